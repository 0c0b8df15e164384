"""A new project with nothing but its defaults keeps its loop going by itself: created and fed
through the REST API, linked to a real Label Studio, worked by a real worker, and labeled by
an expert through Label Studio, for three rounds without anyone pressing retrain."""

from __future__ import annotations

import csv

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import Item, ItemState, Split
from loupe.labeling import adapter
from loupe.labeling.ls_payloads import choices_result
from loupe.labeling.models import GroundTruth
from loupe.learning.models import LearningLoop, ModelVersion, RunStatus, SelectionRound
from tests.factories import UserFactory
from tests.worker_process import wait_for

pytestmark = [
    pytest.mark.labelstudio,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

CLASSES = ["good", "scratch", "dent", "stain"]


def write_data(root) -> dict[str, str]:
    """A small imbalanced inspection set: 24 labeled seeds, the rest an unlabeled pool, in
    one manifest. Returns the true class of every file, which the expert knows."""
    from ml.synthetic import make_inspection_dataset

    make_inspection_dataset(
        root / "set",
        n_images=260,
        image_size=64,
        seed=11,
        class_counts={"good": 180, "scratch": 30, "dent": 28, "stain": 22},
    )
    with open(root / "set" / "manifest.csv") as handle:
        rows = list(csv.DictReader(handle))
    truth, lines, seeds = {}, ["path,label"], dict.fromkeys(CLASSES, 0)
    for row in rows:
        path = f"set/{row['path']}"
        truth[path] = row["label"]
        wanted = 12 if row["label"] == "good" else 4
        if seeds[row["label"]] < wanted:
            seeds[row["label"]] += 1
            lines.append(f"{path},{row['label']}")
        else:
            lines.append(f"{path},")
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    return truth


def label_open_tasks(client, project_id: int, truth_of_item: dict[int, str]) -> int:
    """The expert answers every task that has no answer yet, with the true class."""
    answered = 0
    for task in client.tasks.list(project=project_id, fields="all"):
        if task.annotations:
            continue
        label = truth_of_item[task.data["loupe_item_id"]]
        client.annotations.create(id=task.id, result=choices_result([label]), lead_time=1.5)
        answered += 1
    return answered


def splits_of(items) -> dict[int, str]:
    return dict(Item.objects.filter(pk__in=items).values_list("id", "split"))


def test_three_rounds_run_by_themselves_with_the_project_defaults(stack, api_client, import_root):
    server, worker = stack
    truth = write_data(import_root)
    engineer = UserFactory(role=Role.ENGINEER)
    api_client.force_authenticate(engineer)

    created = api_client.post(
        "/api/v1/projects/",
        {"name": "Castings", "classes": [{"name": c} for c in CLASSES]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    slug = created.json()["slug"]
    defaults = created.json()["settings"]
    imported = api_client.post(
        f"/api/v1/projects/{slug}/imports/", {"path": str(import_root / "data.csv")}
    )
    assert imported.status_code in (201, 202), imported.json()
    job = imported.json()["id"]
    wait_for(
        lambda: api_client.get(f"/api/v1/imports/{job}/").json()["status"] == "succeeded",
        timeout=180,
        worker=worker,
    )
    linked = api_client.post(f"/api/v1/labeling/projects/{slug}/sync/")
    assert linked.status_code == 200, linked.json()

    items = Item.objects.filter(project__slug=slug)
    truth_of_item = {i.pk: truth[i.original_name] for i in items}
    client = adapter.client_for(server.url, server.token)
    project_id = Item.objects.filter(project__slug=slug).first().project.ls_project_id

    def pushed(n):
        rounds = SelectionRound.objects.filter(
            project__slug=slug, status__in=["pushed", "complete"]
        )
        return rounds.count() >= n

    held_before = None
    for number in (1, 2, 3):
        wait_for(lambda n=number: pushed(n), timeout=420, interval=1.0, worker=worker)
        status = api_client.get(f"/api/v1/projects/{slug}/").json()["loop_status"]
        if number < 3:
            assert status["state"] in ("labeling", "training", "waiting"), status
            answered = label_open_tasks(client, project_id, truth_of_item)
            assert answered == defaults["batch_size"]
            # Every answer reaches Loupe (webhook, or reconciliation where one was lost).
            wait_for(
                lambda: (
                    not Item.objects.filter(
                        project__slug=slug, state__in=[ItemState.QUEUED, ItemState.IN_ANNOTATION]
                    ).exists()
                ),
                timeout=120,
                worker=worker,
            )
        labeled = list(
            GroundTruth.objects.filter(project__slug=slug).values_list("item_id", flat=True)
        )
        if held_before is not None:
            # The holdout does not move between versions.
            assert {k: v for k, v in splits_of(labeled).items() if k in held_before} == held_before
        held_before = splits_of(labeled)
        # Every label trains or measures, never neither.
        assert set(held_before.values()) <= {Split.TRAIN, Split.HOLDOUT}

    loops = list(LearningLoop.objects.filter(project__slug=slug).order_by("created_at"))
    assert [loop.trigger for loop in loops[:3]] == ["setup", "batch_done", "batch_done"]
    assert all(loop.status == RunStatus.SUCCEEDED for loop in loops[:3])
    rounds = SelectionRound.objects.filter(project__slug=slug).order_by("number")
    assert [r.number for r in rounds] == [1, 2, 3]
    # One task per pick, none twice: the third batch waits for the expert.
    tasks = list(client.tasks.list(project=project_id))
    assert len(tasks) == 3 * defaults["batch_size"]
    assert len({t.data["loupe_item_id"] for t in tasks}) == len(tasks)
    assert GroundTruth.objects.filter(project__slug=slug).count() == 24 + 2 * defaults["batch_size"]
    versions = list(ModelVersion.objects.filter(project__slug=slug).order_by("version"))
    assert [v.version for v in versions] == [1, 2, 3]
    for version in versions:
        low, high = version.metrics["intervals"]["balanced_accuracy"]
        assert low <= version.metrics["balanced_accuracy"] <= high
    # The third version learned from every label but the holdout's, and measured on the rest.
    last = versions[-1]
    holdout = sum(row["support"] for row in last.metrics["per_class"])
    assert last.labels_used + holdout == 24 + 2 * defaults["batch_size"]
    status = api_client.get(f"/api/v1/projects/{slug}/").json()["loop_status"]
    assert status["state"] == "labeling" and "in Label Studio" in status["message"]

"""Pair verification end to end with the project's defaults: created and fed through the
REST API (identity folders and images without identity), linked to a real Label Studio,
worked by a real worker process, answered by an expert through Label Studio ("same",
"different" and once "can't tell"), for two rounds without anyone pressing retrain."""

from __future__ import annotations

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import Item, ItemState
from loupe.labeling import adapter
from loupe.labeling.ls_payloads import choices_result
from loupe.labeling.models import GroundTruth
from loupe.learning.models import ModelVersion, SelectionRound
from ml.synthetic_faces import make_faces_imagefolder
from tests.factories import UserFactory
from tests.worker_process import wait_for

pytestmark = [
    pytest.mark.labelstudio,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def write_faces(root):
    """Six people in identity folders, four more whose photos lie at the top without one
    (the expert knows who they are from the file names)."""
    made = make_faces_imagefolder(root, identities=10, images_per_identity=4, image_size=48, seed=5)
    for name in made["identities"][6:]:
        for path in sorted((root / name).iterdir()):
            path.rename(root / f"{name}-{path.name}")
        (root / name).rmdir()


def person(name: str) -> str:
    return name.split("/")[0].split("-")[0]


def truth_of(item: Item) -> str:
    left, right = item.original_name.split(" | ")
    return "same" if person(left) == person(right) else "different"


def answer_open_tasks(client, project_id: int, *, cant_tell: int | None = None) -> list[int]:
    """Answers every open task with the truth ("can't tell" on the item `cant_tell`);
    returns the answered item ids."""
    answered = []
    for task in client.tasks.list(project=project_id, fields="all"):
        if task.annotations:
            continue
        item = Item.objects.get(pk=task.data["loupe_item_id"])
        choice = "can't tell" if item.pk == cant_tell else truth_of(item)
        client.annotations.create(id=task.id, result=choices_result([choice]), lead_time=2.0)
        answered.append(item.pk)
    return answered


def test_two_pair_rounds_run_by_themselves_through_label_studio(stack, api_client, import_root):
    server, worker = stack
    write_faces(import_root / "faces")
    api_client.force_authenticate(UserFactory(role=Role.ENGINEER))

    created = api_client.post(
        "/api/v1/projects/", {"name": "Faces", "task_type": "pair_verification"}, format="json"
    )
    assert created.status_code == 201, created.json()
    slug = created.json()["slug"]
    assert [c["name"] for c in created.json()["classes"]] == ["different", "same"]
    imported = api_client.post(
        f"/api/v1/projects/{slug}/imports/", {"path": str(import_root / "faces")}
    )
    assert imported.status_code in (201, 202), imported.json()
    job = imported.json()["id"]
    wait_for(
        lambda: api_client.get(f"/api/v1/imports/{job}/").json()["status"] == "succeeded",
        timeout=180,
        worker=worker,
    )
    seeds = GroundTruth.objects.filter(project__slug=slug).count()
    assert seeds > 0
    linked = api_client.post(f"/api/v1/labeling/projects/{slug}/sync/")
    assert linked.status_code == 200, linked.json()
    project_id = Item.objects.filter(project__slug=slug).first().project.ls_project_id
    client = adapter.client_for(server.url, server.token)

    # Label Studio shows the two images of a pair and the three answers.
    config = client.projects.get(project_id).label_config
    assert config.count("<Image ") == 2 and "can't tell" in config

    def pushed(n):
        return (
            SelectionRound.objects.filter(
                project__slug=slug, status__in=["pushed", "complete"]
            ).count()
            >= n
        )

    wait_for(lambda: pushed(1), timeout=420, interval=1.0, worker=worker)
    tasks = list(client.tasks.list(project=project_id, fields="all"))
    assert tasks
    for task in tasks:
        item = Item.objects.get(pk=task.data["loupe_item_id"])
        assert task.data["image"].endswith(item.file.name)
        assert task.data["image2"].endswith(item.extra_files[0])
        assert "p(same)" in task.data["loupe_reason"]
    predictions = list(client.predictions.list(project=project_id))
    assert len(predictions) == len(tasks)
    assert all(0.0 <= p.score <= 1.0 for p in predictions)

    # The expert answers; one pair they cannot tell.
    unsure = tasks[-1].data["loupe_item_id"]
    answered = answer_open_tasks(client, project_id, cant_tell=unsure)
    wait_for(
        lambda: (
            not Item.objects.filter(
                pk__in=answered, state__in=[ItemState.QUEUED, ItemState.IN_ANNOTATION]
            ).exists()
        ),
        timeout=120,
        worker=worker,
    )
    truths = {g.item_id: g for g in GroundTruth.objects.filter(item_id__in=answered)}
    assert unsure not in truths and Item.objects.get(pk=unsure).state == ItemState.SKIPPED
    for item_id, truth in truths.items():
        assert truth.label_class.name == truth_of(Item.objects.get(pk=item_id))
    assert len(truths) == len(answered) - 1

    # The next round starts by itself, from a version trained on the new labels too.
    wait_for(lambda: pushed(2), timeout=420, interval=1.0, worker=worker)
    versions = list(ModelVersion.objects.filter(project__slug=slug).order_by("version"))
    assert len(versions) >= 2
    assert versions[-1].labels_used > versions[0].labels_used
    low, high = versions[-1].metrics["intervals"]["roc_auc"]
    assert low <= versions[-1].metrics["roc_auc"] <= high
    second = {t.data["loupe_item_id"] for t in client.tasks.list(project=project_id)}
    assert len(second) == len(list(client.tasks.list(project=project_id)))  # none twice

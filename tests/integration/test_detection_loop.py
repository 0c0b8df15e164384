"""Object detection end to end with the project's defaults: a project created through the
REST API without classes, fed a COCO folder of score pages (some with boxes, the rest to
label), linked to a real Label Studio, worked by a real worker process: the pushed pages
carry the model's boxes as pre-annotations, and the boxes an expert draws in Label Studio
come back as the pages' ground truth."""

from __future__ import annotations

import json

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import Item, ItemState
from loupe.labeling import adapter, ls_payloads
from loupe.labeling.models import GroundTruth
from loupe.learning.models import ModelVersion, SelectionRound
from loupe.tasktypes.object_detection import answer_boxes
from ml.synthetic_scores import make_score_pages
from tests.factories import UserFactory
from tests.worker_process import wait_for

pytestmark = [
    pytest.mark.labelstudio,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

PAGES, LABELED = 12, 8


def write_pages(root) -> dict[str, list[dict]]:
    """Score pages as COCO with the boxes of all but the first LABELED pages taken out;
    returns the boxes taken out by page file name (what the expert will draw)."""
    make_score_pages(root, pages=PAGES, width=384, height=256, interline=(5.0, 5.5), seed=8)
    path = root / "annotations.json"
    coco = json.loads(path.read_text())
    keep = {image["id"] for image in coco["images"][:LABELED]}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    hidden: dict[str, list[dict]] = {}
    for ann in coco["annotations"]:
        if ann["image_id"] not in keep:
            x, y, w, h = ann["bbox"]
            box = {"x": x, "y": y, "w": w, "h": h, "label": names[ann["category_id"]]}
            hidden.setdefault(files[ann["image_id"]], []).append(box)
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    path.write_text(json.dumps(coco))
    return hidden


def test_pushed_pages_show_the_models_boxes_and_drawn_boxes_become_ground_truth(
    stack, api_client, import_root
):
    server, worker = stack
    hidden = write_pages(import_root / "scores")
    api_client.force_authenticate(UserFactory(role=Role.ENGINEER))
    created = api_client.post(
        "/api/v1/projects/",
        {"name": "Scores", "task_type": "object_detection", "batch_size": 3},
        format="json",
    )
    assert created.status_code == 201, created.json()
    slug = created.json()["slug"]
    imported = api_client.post(
        f"/api/v1/projects/{slug}/imports/", {"path": str(import_root / "scores")}
    )
    assert imported.status_code in (201, 202), imported.json()
    job = imported.json()["id"]
    wait_for(
        lambda: api_client.get(f"/api/v1/imports/{job}/").json()["status"] == "succeeded",
        timeout=180,
        worker=worker,
    )
    assert GroundTruth.objects.filter(project__slug=slug).count() == LABELED
    classes = api_client.get(f"/api/v1/projects/{slug}/").json()["classes"]
    assert "keySharp" in {c["name"] for c in classes}  # taken from the COCO file
    linked = api_client.post(f"/api/v1/labeling/projects/{slug}/sync/")
    assert linked.status_code == 200, linked.json()
    project_id = Item.objects.filter(project__slug=slug).first().project.ls_project_id
    client = adapter.client_for(server.url, server.token)
    config = client.projects.get(project_id).label_config
    assert "<RectangleLabels" in config and 'value="accidentalSharp"' in config

    def pushed(n):
        done = ["pushed", "complete"]
        return SelectionRound.objects.filter(project__slug=slug, status__in=done).count() >= n

    wait_for(lambda: pushed(1), timeout=480, interval=1.0, worker=worker)
    version = ModelVersion.objects.get(project__slug=slug)
    assert version.model_kind == "centernet" and "map50" in version.metrics
    tasks = list(client.tasks.list(project=project_id, fields="all"))
    assert len(tasks) == 3
    predictions = {p.task: p for p in client.predictions.list(project=project_id)}
    assert set(predictions) == {t.id for t in tasks}
    for task in tasks:
        assert "box" in task.data["loupe_reason"]
        prediction = predictions[task.id]
        assert 0.0 <= prediction.score <= 1.0  # the page's uncertainty
        for region in prediction.result:
            assert region["type"] == "rectanglelabels"
            assert (region["original_width"], region["original_height"]) == (384, 256)
            assert 0.0 <= region["value"]["x"] <= 100.0 and region["value"]["width"] > 0

    # The expert draws the page's true boxes (replacing the model's) in Label Studio.
    answered = {}
    for task in tasks:
        item = Item.objects.get(pk=task.data["loupe_item_id"])
        truth = hidden[item.original_name]
        boxes = [ls_payloads.Box(b["x"], b["y"], b["w"], b["h"], b["label"]) for b in truth]
        result = ls_payloads.rectangles_result(boxes, image_width=384, image_height=256)
        client.annotations.create(id=task.id, result=result, lead_time=30.0)
        answered[item.pk] = truth
    wait_for(
        lambda: GroundTruth.objects.filter(item_id__in=answered).count() == len(answered),
        timeout=120,
        worker=worker,
    )
    for item_id, truth in answered.items():
        got = answer_boxes(GroundTruth.objects.get(item_id=item_id).answer)
        assert sorted(b.label for b in got) == sorted(b["label"] for b in truth)
        want = sorted((b["label"], b["x"], b["y"], b["w"], b["h"]) for b in truth)
        have = sorted((b.label, b.x, b.y, b.w, b.h) for b in got)
        for a, b in zip(have, want, strict=True):
            assert (
                a[0] == b[0] and max(abs(p - q) for p, q in zip(a[1:], b[1:], strict=True)) < 0.05
            )
        assert Item.objects.get(pk=item_id).state == ItemState.LABELED

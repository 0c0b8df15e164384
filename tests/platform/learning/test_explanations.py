"""A round's picks come with what the model looked at (a saliency overlay) and the labeled
items they resemble; the batch reaches Label Studio with both, and without them when
explaining fails."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from loupe.datasets.models import Item
from loupe.labeling import sync
from loupe.labeling.models import GroundTruth
from loupe.learning.explanations import OVERLAY_PX, selection_round_explain
from loupe.learning.loop import loop_explain, loop_start
from loupe.learning.models import RunStatus, SelectionItem, SelectionRound
from ml import artifacts

pytestmark = pytest.mark.django_db


class PushedTasks:
    """Label Studio stands in: records the tasks Loupe pushes."""

    def __init__(self, monkeypatch):
        self.tasks = []
        monkeypatch.setattr(sync.adapter, "project_ensure", lambda client, **kw: 7)
        monkeypatch.setattr(sync.adapter, "local_storage_ensure", lambda *a, **k: 1)
        monkeypatch.setattr(sync.adapter, "webhook_ensure", lambda *a, **k: 1)
        monkeypatch.setattr(sync.adapter, "tasks_push", self.tasks_push)

    def tasks_push(self, client, project_id, tasks):
        self.tasks.extend(tasks)
        return {t.item_id: 500 + i for i, t in enumerate(tasks)}


@pytest.fixture
def label_studio(monkeypatch):
    return PushedTasks(monkeypatch)


def run_loop(project, capture):
    with capture(execute=True):
        loop, _ = loop_start(project=project)
    loop.refresh_from_db()
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    return loop


def png(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as handle:
        return np.asarray(Image.open(io.BytesIO(handle.read())).convert("RGB"))


def test_a_rounds_picks_get_an_overlay_and_their_nearest_labeled_items(
    inspection_project, label_studio, django_capture_on_commit_callbacks
):
    loop = run_loop(inspection_project, django_capture_on_commit_callbacks)

    picks = list(loop.selection_round.items.select_related("item", "predicted_class"))
    version = loop.selection_round.model_version
    with default_storage.open(version.train_embeddings.name, "rb") as handle:
        trained_on = set(artifacts.load(handle).item_ids.tolist())
    truth = dict(GroundTruth.objects.values_list("item_id", "label_class__name"))
    assert len(picks) == 12
    for pick in picks:
        overlay = png(pick.saliency.name)
        # The 32 px images are enlarged with crisp pixels, and the heat is laid over them.
        assert 128 <= max(overlay.shape[:2]) <= OVERLAY_PX
        assert overlay.std() > 0
        assert len(pick.neighbours) == 3
        for near in pick.neighbours:
            assert near["item_id"] in trained_on and near["item_id"] != pick.item_id
            assert near["label"] == truth[near["item_id"]]
        distances = [near["distance"] for near in pick.neighbours]
        assert distances == sorted(distances)
    # The round is pushed once explained: every task carries its overlay and neighbours.
    loop.selection_round.refresh_from_db()
    assert loop.selection_round.status == SelectionRound.Status.PUSHED
    pushed = {t.item_id: t for t in label_studio.tasks}
    assert set(pushed) == {p.item_id for p in picks}
    for pick in picks:
        task = pushed[pick.item_id]
        assert task.saliency == f"/data/local-files/?d={pick.saliency.name}"
        assert task.explained_class == pick.predicted_class.name
        assert [(n.item_id, n.label) for n in task.neighbours] == [
            (near["item_id"], near["label"]) for near in pick.neighbours
        ]
        near_file = Item.objects.get(pk=task.neighbours[0].item_id).file.name
        assert task.neighbours[0].image == f"/data/local-files/?d={near_file}"


def test_the_overlay_shows_heat_over_the_image(
    inspection_project, label_studio, settings, django_capture_on_commit_callbacks
):
    loop = run_loop(inspection_project, django_capture_on_commit_callbacks)
    pick = loop.selection_round.items.select_related("item").first()

    overlay = png(pick.saliency.name).astype(int)
    with Image.open(default_storage.path(pick.item.file.name)) as original:
        plain = np.asarray(original.convert("RGB").resize(overlay.shape[1::-1], Image.NEAREST))

    changed = np.abs(overlay - plain.astype(int)).sum(axis=2) > 30
    # Some of the image glows with heat, not all of it: the map says where, not everywhere.
    assert 0.02 < changed.mean() < 0.98


def test_a_broken_explanation_does_not_fail_the_round(
    inspection_project, label_studio, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("the accelerator fell over")

    monkeypatch.setattr("ml.explain.grad_cam", broken)

    loop = run_loop(inspection_project, django_capture_on_commit_callbacks)

    selection = loop.selection_round
    selection.refresh_from_db()
    assert selection.items.count() == 12
    assert not selection.items.exclude(saliency="").exists()
    # The batch still reached Label Studio, without explanations.
    assert selection.status == SelectionRound.Status.PUSHED
    assert len(label_studio.tasks) == 12
    assert all(t.saliency == "" and t.neighbours == () for t in label_studio.tasks)


def test_an_unreadable_image_leaves_only_its_own_pick_without_overlay(
    inspection_project, label_studio, django_capture_on_commit_callbacks
):
    loop = run_loop(inspection_project, django_capture_on_commit_callbacks)
    selection = loop.selection_round
    broken, *others = list(selection.items.select_related("item"))
    with default_storage.open(broken.item.file.name, "wb") as handle:
        handle.write(b"not an image any more")
    SelectionItem.objects.filter(selection_round=selection).update(saliency="", neighbours=[])

    explained = selection_round_explain(selection_round=selection)

    assert explained == len(others)
    broken.refresh_from_db()
    assert broken.saliency == "" and len(broken.neighbours) == 3
    assert not selection.items.exclude(pk=broken.pk).filter(saliency="").exists()


def test_a_cold_start_round_has_nothing_to_explain(
    inspection_project, label_studio, django_capture_on_commit_callbacks
):
    GroundTruth.objects.filter(project=inspection_project).delete()

    loop = run_loop(inspection_project, django_capture_on_commit_callbacks)

    assert loop.selection_round.strategy == "cold_start"
    assert selection_round_explain(selection_round=loop.selection_round) == 0
    assert all(t.saliency == "" and t.neighbours == () for t in label_studio.tasks)
    assert label_studio.tasks


def test_a_late_explanation_still_reaches_a_round_already_pushed(
    inspection_project, label_studio, django_capture_on_commit_callbacks
):
    loop = run_loop(inspection_project, django_capture_on_commit_callbacks)
    selection = loop.selection_round
    # As if the periodic push had sent the batch before its explanation came.
    SelectionItem.objects.filter(selection_round=selection).update(saliency="", neighbours=[])
    pushed = len(label_studio.tasks)

    with django_capture_on_commit_callbacks(execute=True):
        loop_explain(selection_round_id=selection.pk)

    assert not selection.items.filter(saliency="").exists()
    assert all(len(p.neighbours) == 3 for p in selection.items.all())
    assert len(label_studio.tasks) == pushed  # not pushed twice

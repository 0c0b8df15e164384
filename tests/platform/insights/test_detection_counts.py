"""Boxes per class on a detection project's labeled pages, against the class targets: the
figures of the overview's "Boxes per class" table."""

import pytest

from loupe.datasets.models import ItemState, Split
from loupe.insights.detection import detection_box_counts, detection_holdout, page_boxes
from loupe.labeling.models import Decision
from loupe.learning.models import ModelVersion, Prediction, RunStatus, TrainingRun
from loupe.projects.services import label_classes_set, project_create
from loupe.tasktypes.object_detection import boxes_answer
from ml.detection_io import Box
from tests.platform.insights.builders import item, truth

pytestmark = pytest.mark.django_db


def _project():
    project = project_create(name="Scores", created_by=None, task_type="object_detection")
    label_classes_set(
        project=project,
        classes=[
            {"name": "gClef", "target_count": 3},
            {"name": "noteheadBlack", "target_count": 10},
            {"name": "keySharp"},
        ],
    )
    return project


def _page(project, split, labels, **kw):
    page = item(project, state=ItemState.LABELED, split=split, width=384, height=256)
    boxes = [Box(10.0 + 12 * i, 20.0, 8.0, 9.0, label) for i, label in enumerate(labels)]
    truth(page, None, answer=boxes_answer(boxes), **kw)
    return page


def test_boxes_are_counted_per_class_and_split_against_the_targets():
    project = _project()
    _page(project, Split.TRAIN, ["gClef", "noteheadBlack", "noteheadBlack"])
    _page(project, Split.TRAIN, ["gClef", "gClef", "noteheadBlack"])
    _page(project, Split.HOLDOUT, ["gClef", "noteheadBlack", "keySharp"])
    _page(project, Split.TRAIN, [])  # a labeled page with nothing on it
    # Not counted: a page waiting for a reviewer, and a pool page without ground truth.
    _page(project, Split.TRAIN, ["gClef"] * 5, needs_review=True, decided_by=Decision.MAJORITY)
    item(project, split=Split.POOL, width=384, height=256)

    counts = detection_box_counts(project=project)

    rows = {r["name"]: r for r in counts["classes"]}
    assert [r["name"] for r in counts["classes"]] == ["gClef", "noteheadBlack", "keySharp"]
    assert (rows["gClef"]["train"], rows["gClef"]["holdout"], rows["gClef"]["boxes"]) == (3, 1, 4)
    assert (rows["noteheadBlack"]["train"], rows["noteheadBlack"]["holdout"]) == (3, 1)
    assert rows["keySharp"]["boxes"] == 1 and rows["keySharp"]["target"] is None
    # gClef has more boxes than its target; noteheadBlack has 4 of 10.
    assert rows["gClef"]["progress"] == 1.0 and rows["gClef"]["remaining"] == 0
    assert rows["noteheadBlack"]["progress"] == pytest.approx(0.4)
    assert rows["noteheadBlack"]["remaining"] == 6
    assert counts["targets_met"] == 1 and counts["classes_with_target"] == 2
    assert counts["pages"] == {"train": 3, "holdout": 1} and counts["boxes"] == 9


def test_a_project_without_labeled_pages_counts_zero_boxes_for_every_class():
    counts = detection_box_counts(project=_project())
    assert [r["boxes"] for r in counts["classes"]] == [0, 0, 0]
    assert counts["targets_met"] == 0 and counts["boxes"] == 0


def test_a_page_shows_its_true_boxes_and_the_latest_versions_boxes_by_class_name():
    project = _project()
    labeled = _page(project, Split.TRAIN, ["keySharp", "gClef"])
    pool = item(project, split=Split.POOL, width=384, height=256)
    for number, names, boxes in [
        (1, ["gClef", "noteheadBlack", "keySharp"], [[1, 2, 3, 4, 0, 0.9]]),
        (2, ["keySharp", "gClef", "noteheadBlack"], [[5, 6, 7, 8, 0, 0.8], [9, 9, 4, 4, 2, 0.4]]),
    ]:
        run = TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED)
        version = ModelVersion.objects.create(
            project=project,
            training_run=run,
            version=number,
            image_size=256,
            class_names=names,
            metrics={"map50": 0.25 * number, "per_class": [], "intervals": {"map50": [0.1, 0.6]}},
        )
        Prediction.objects.create(
            item=pool, model_version=version, confidence=0.5, uncertainty=0.5, boxes=boxes
        )

    shown = page_boxes(project=project, items=[labeled, pool])

    assert [b["label"] for b in shown[labeled.pk]["truth"]] == ["keySharp", "gClef"]
    assert shown[labeled.pk]["predicted"] == [] and shown[pool.pk]["truth"] == []
    predicted = shown[pool.pk]["predicted"]
    assert shown[pool.pk]["version"] == 2
    assert [(b["label"], b["x"], b["score"]) for b in predicted] == [
        ("keySharp", 5, 0.8),
        ("noteheadBlack", 9, 0.4),
    ]
    assert (shown[pool.pk]["width"], shown[pool.pk]["height"]) == (384, 256)
    holdout = detection_holdout(project=project)
    assert holdout["version"] == 2 and holdout["map50"] == 0.5
    assert holdout["map50_interval"] == [0.1, 0.6]

"""The adaptive mix of a detection project learns from pages: each labeled page a round
picked is valued by what the round's model got wrong on it (1 − F1 of its boxes against
the page's ground truth), and the next batch moves away from an arm whose pages the model
had already boxed right."""

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from loupe.datasets.models import ItemState
from loupe.labeling.models import Decision, GroundTruth
from loupe.learning.models import (
    ModelVersion,
    Prediction,
    ScoringChunk,
    ScoringRun,
    SelectionRound,
    TrainingRun,
)
from loupe.learning.pick_history import pick_history
from loupe.learning.selection import selection_round_create
from loupe.projects.selectors import project_classes
from loupe.projects.services import project_create
from ml import artifacts
from ml.artifacts import ItemArrays
from ml.strategies.detection import BOX_PRIOR
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

CLASSES = ["gClef", "noteheadBlack"]
PAGES = 60
BATCH = 20
BOXES = 3
THRESHOLD = 0.4


def _boxes(page: int) -> list[list[float]]:
    """The model's boxes on a page, as a Prediction stores them: [x, y, w, h, class, score];
    the last one scores under the version's box threshold (not shown, so not counted)."""
    return [
        [10.0 + 40 * b, 5.0 + page, 12.0, 18.0, b % 2, score]
        for b, score in enumerate([0.9, 0.8, 0.2])
    ]


@pytest.fixture
def scored_pages():
    """A detection project choosing with box_adaptive, PAGES pool pages scored by a
    version whose boxes are stored per page, and the scoring arrays selection reads."""
    project = project_create(
        name="Scores",
        created_by=None,
        task_type="object_detection",
        classes=CLASSES,
        strategy="box_adaptive",
        control_fraction=0.1,
    )
    items = [ItemFactory(project=project, width=384, height=256) for _ in range(PAGES)]
    run = TrainingRun.objects.create(project=project, status="succeeded")
    version = ModelVersion.objects.create(
        project=project,
        training_run=run,
        version=1,
        weights="models/scores-v1.pt",
        model_kind="centernet",
        image_size=0,
        class_names=CLASSES,
        labels_used=10,
        metrics={"map50": 0.4, "box_threshold": {"threshold": THRESHOLD, "f1": 0.5}},
    )
    scoring = ScoringRun.objects.create(project=project, model_version=version, status="succeeded")
    rng = np.random.default_rng(0)
    doubt = rng.random((PAGES, BOXES)).astype(np.float32)
    Prediction.objects.bulk_create(
        Prediction(
            item=item,
            model_version=version,
            scoring_run=scoring,
            confidence=1 - float(doubt[i].mean()),
            uncertainty=float(doubt[i].mean()),
            probs=[0.5, 0.5],
            boxes=_boxes(i),
        )
        for i, item in enumerate(items)
    )
    stored = np.array([_boxes(i) for i in range(PAGES)], dtype=np.float32)
    xyxy = np.concatenate([stored[..., :2], stored[..., :2] + stored[..., 2:4]], axis=-1)
    arrays = ItemArrays(
        item_ids=np.array([i.pk for i in items], dtype=np.int64),
        probs=np.full((PAGES, 2), 0.5, dtype=np.float32),
        scores=doubt.mean(axis=1),
        embeddings=rng.normal(size=(PAGES, 8)).astype(np.float32),
        extras={
            "boxes": xyxy,
            "labels": stored[..., 4].astype(np.int64),
            "box_scores": stored[..., 5],
            "box_uncertainty": doubt,
            "box_second": 1 - stored[..., 4].astype(np.int64),
        },
    )
    artifact = f"scoring/{project.slug}/chunk-0{artifacts.SUFFIX}"
    default_storage.save(artifact, ContentFile(artifacts.save(arrays)))
    ScoringChunk.objects.create(
        scoring_run=scoring, index=0, status="succeeded", artifact=artifact, item_ids=[]
    )
    return project, scoring, {item.pk: i for i, item in enumerate(items)}


def _truth(page: int, *, right: bool) -> dict:
    """A page's ground-truth boxes: the model's shown boxes when it got them right, else
    the same classes elsewhere on the page (every shown box wrong, every true box missed)."""
    shown = [b for b in _boxes(page) if b[5] >= THRESHOLD]
    shift = 0.0 if right else 200.0
    return {
        "boxes": [
            {"x": x + shift, "y": y, "w": w, "h": h, "label": CLASSES[int(c)]}
            for x, y, w, h, c, _ in shown
        ]
    }


def _label(selection_round, page_of, *, right_for: set[str], review: int = 0):
    """Ground truth for a round's picks: boxed right by the model for the arms in
    `right_for`, missed for the rest; the first `review` picks wait for review."""
    picks = list(selection_round.items.select_related("item").order_by("rank"))
    for n, pick in enumerate(picks):
        arm = "control" if pick.is_control else pick.strategy
        GroundTruth.objects.create(
            item=pick.item,
            decided_by=Decision.SINGLE,
            answer=_truth(page_of[pick.item_id], right=arm in right_for),
            needs_review=n < review,
        )
        pick.item.state = ItemState.LABELED
        pick.item.save(update_fields=["state"])
    return picks


def test_labeled_pages_are_valued_by_what_the_rounds_model_got_wrong(scored_pages):
    project, scoring, page_of = scored_pages
    first = selection_round_create(project=project, scoring_run=scoring, batch_size=BATCH)
    assert first.strategy == "box_adaptive" and "starting mix" in first.mix["note"]
    picks = _label(first, page_of, right_for={"box_mean"}, review=1)
    waiting = picks[0]

    history = pick_history(project=project, number=2, classes=project_classes(project=project))

    assert history.value is not None and len(history) == BATCH - 1
    expected = {
        "control" if p.is_control else p.strategy for p in picks if p.item_id != waiting.item_id
    }
    assert set(history.arm.tolist()) == expected
    assert (history.age == 0).all()
    by_arm = {arm: history.value[history.arm == arm] for arm in expected}
    np.testing.assert_allclose(by_arm["box_mean"], 0.0, atol=1e-9)
    for arm in expected - {"box_mean"}:
        np.testing.assert_allclose(by_arm[arm], 1.0)


def test_the_next_batch_moves_pages_away_from_an_arm_whose_pages_taught_nothing(scored_pages):
    project, scoring, page_of = scored_pages
    first = selection_round_create(project=project, scoring_run=scoring, batch_size=BATCH)
    _label(first, page_of, right_for={"box_mean"})

    second = selection_round_create(project=project, scoring_run=scoring, batch_size=BATCH)

    assert second.strategy == "box_adaptive"
    assert second.mix["picks"].get("box_mean", 0) < first.mix["picks"]["box_mean"]
    assert second.mix["shares"]["box_mean"] < BOX_PRIOR["box_mean"]
    assert second.mix["relative_yield"]["box_mean"] < 0.5
    stored = SelectionRound.objects.get(pk=second.pk).mix["note"]
    assert "against random picks" in stored and "box_mean" in stored
    assert second.items.count() == BATCH
    assert all("box" in p.reason for p in second.items.all())

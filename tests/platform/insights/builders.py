"""A small project whose every number is known: labels, work in flight, annotators,
model versions with predictions, selection rounds with a random control slice, and learning
loops at a known point of their work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from loupe.datasets.models import Item, ItemState, Split
from loupe.labeling.models import Annotation, Decision, GroundTruth
from loupe.learning.models import (
    LearningLoop,
    ModelVersion,
    Prediction,
    RunStatus,
    ScoringRun,
    SelectionItem,
    SelectionRound,
    TrainingRun,
)
from loupe.projects.models import LabelClass, Project
from loupe.projects.services import project_create
from tests.factories import ItemFactory
from tests.images import png_bytes


def item(project, *, state=ItemState.UNLABELED, split=Split.POOL, source="line-a", **kw) -> Item:
    return ItemFactory(project=project, state=state, split=split, source=source, **kw)


def with_file(it: Item, seed: int = 0) -> Item:
    path = Path(settings.MEDIA_ROOT) / it.file.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(seed))
    return it


def truth(it: Item, cls: LabelClass, *, decided_by=Decision.SINGLE, days_ago=1.0, **kw):
    gt = GroundTruth.objects.create(
        item=it, project_id=it.project_id, label_class=cls, decided_by=decided_by, **kw
    )
    GroundTruth.objects.filter(pk=gt.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    return gt


_LS_IDS = iter(range(1, 10**6))


def annotate(it: Item, who: str, cls: LabelClass | None, *, days_ago=1.0, cancelled=False):
    return Annotation.objects.create(
        item=it,
        project_id=it.project_id,
        annotator=who,
        label_class=cls,
        was_cancelled=cancelled,
        ls_annotation_id=next(_LS_IDS),
        ls_updated_at=timezone.now() - timedelta(days=days_ago),
    )


def version(project, number: int, *, labels_used: int, bal_acc: float, base: float):
    run = TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED)
    names = [c.name for c in project.classes.order_by("order")]
    return ModelVersion.objects.create(
        project=project,
        training_run=run,
        version=number,
        weights=f"models/{project.slug}-v{number}.pt",
        image_size=32,
        class_names=names,
        labels_used=labels_used,
        metrics={"balanced_accuracy": bal_acc, "macro_f1": bal_acc - 0.1, "n": 4},
        baseline_metrics={"balanced_accuracy": base, "name": "linear probe"},
    )


def scored(v: ModelVersion, predictions: dict[Item, LabelClass], *, uncertainty=0.3):
    run = ScoringRun.objects.create(
        project=v.project, model_version=v, status=RunStatus.SUCCEEDED, progress=1.0
    )
    Prediction.objects.bulk_create(
        Prediction(
            item=it,
            model_version=v,
            scoring_run=run,
            predicted_class=cls,
            confidence=0.7,
            uncertainty=uncertainty + 0.01 * i,
            probs=[],
        )
        for i, (it, cls) in enumerate(predictions.items())
    )
    return run


def picked(project, number, picks: list[tuple[Item, LabelClass | None, bool]], v=None):
    """A round with (item, predicted class, is control) picks."""
    selection_round = SelectionRound.objects.create(
        project=project, number=number, model_version=v, strategy="margin", batch_size=len(picks)
    )
    for rank, (it, cls, control) in enumerate(picks, start=1):
        SelectionItem.objects.create(
            selection_round=selection_round,
            item=it,
            rank=rank,
            strategy="random" if control else "margin",
            is_control=control,
            predicted_class=cls,
            reason="random control slice" if control else f"margin score 0.{rank}",
        )
    return selection_round


@dataclass
class World:
    project: Project
    good: LabelClass
    scratch: LabelClass
    dent: LabelClass
    pool: list[Item] = field(default_factory=list)
    queued: list[Item] = field(default_factory=list)
    in_annotation: list[Item] = field(default_factory=list)
    v1: ModelVersion | None = None
    v2: ModelVersion | None = None


def build_world() -> World:
    """good (target 10), scratch (target 5), dent (no target).

    Labeled: 6 good imported + 2 good holdout imported; 3 scratch and 1 good labeled by
    people in the last days (one scratch 20 days ago); one tie waiting for review.
    Model v1 scored 10 pool items, v2 scored the 8 still in the pool (6 good, 2 scratch).
    Round 1 (v1): 3 control picks, now labeled (v1 was right on 2); round 2 (v2) left 3
    items queued and 2 in annotation.
    """
    project = project_create(
        name="Insight line",
        created_by=None,
        classes=[
            {"name": "good", "target_count": 10},
            {"name": "scratch", "target_count": 5},
            {"name": "dent"},
        ],
    )
    good, scratch, dent = project.classes.order_by("order")
    w = World(project=project, good=good, scratch=scratch, dent=dent)
    for _ in range(6):
        truth(item(project, state=ItemState.LABELED, split=Split.TRAIN), good,
              decided_by=Decision.IMPORTED, days_ago=40)  # fmt: skip
    for _ in range(2):
        truth(item(project, state=ItemState.LABELED, split=Split.HOLDOUT), good,
              decided_by=Decision.IMPORTED, days_ago=40)  # fmt: skip

    w.pool = [item(project, source="line-a" if i < 5 else "line-b") for i in range(8)]
    control = [item(project) for _ in range(3)]
    w.queued = [item(project) for _ in range(3)]
    w.in_annotation = [item(project) for _ in range(2)]
    w.v1 = version(project, 1, labels_used=8, bal_acc=0.5, base=0.4)
    scored(w.v1, {**{it: good for it in w.pool}, control[0]: scratch, control[1]: good,
                  control[2]: good})  # fmt: skip
    picked(project, 1, [(c, None, True) for c in control], v=w.v1)
    # Control picks labeled after v1 scored them: scratch, good, scratch -> v1 right on 2.
    for it, cls, who in ((control[0], scratch, "alice"), (control[1], good, "alice"),
                         (control[2], scratch, "bob")):  # fmt: skip
        it.state, it.split = ItemState.LABELED, Split.TRAIN
        it.save()
        truth(it, cls, days_ago=2)
        annotate(it, who, cls, days_ago=2)
    old = item(project, state=ItemState.LABELED, split=Split.TRAIN)
    truth(old, scratch, days_ago=20)
    annotate(old, "bob", scratch, days_ago=20)

    w.v2 = version(project, 2, labels_used=12, bal_acc=0.6, base=0.45)
    scored(w.v2, {**{it: good for it in w.pool[:6]}, w.pool[6]: scratch, w.pool[7]: scratch},
           uncertainty=0.6)  # fmt: skip
    picked(project, 2, [(w.queued[0], good, False), (w.queued[1], scratch, False),
                        (w.queued[2], None, True), (w.in_annotation[0], scratch, False),
                        (w.in_annotation[1], scratch, False)], v=w.v2)  # fmt: skip
    Item.objects.filter(pk__in=[i.pk for i in w.queued]).update(state=ItemState.QUEUED)
    Item.objects.filter(pk__in=[i.pk for i in w.in_annotation]).update(
        state=ItemState.IN_ANNOTATION
    )
    # A tie: alice says scratch, bob says good; the ground truth waits for review.
    tie = w.in_annotation[0]
    truth(tie, scratch, decided_by=Decision.MAJORITY, needs_review=True, days_ago=1)
    annotate(tie, "alice", scratch, days_ago=1)
    annotate(tie, "bob", good, days_ago=1)
    # Three annotators agree on one item; carol skips another.
    both = w.in_annotation[1]
    for who in ("alice", "bob", "carol"):
        annotate(both, who, scratch, days_ago=0.5)
    annotate(w.queued[0], "carol", None, cancelled=True, days_ago=0.5)
    return w


def running_loop(project, *, step=LearningLoop.Step.TRAIN, progress=0.5, elapsed=60):
    """A loop whose current step's run has done `progress` of its work in `elapsed` s."""
    now = timezone.now()
    run_times = {"started_at": now - timedelta(seconds=elapsed), "heartbeat_at": now}
    training = TrainingRun.objects.create(
        project=project,
        status=RunStatus.RUNNING if step == LearningLoop.Step.TRAIN else RunStatus.SUCCEEDED,
        progress=progress if step == LearningLoop.Step.TRAIN else 1.0,
        phase="training",
        **run_times,
    )
    loop = LearningLoop.objects.create(
        project=project,
        status=RunStatus.RUNNING,
        step=step,
        training_run=training,
        started_at=now - timedelta(seconds=elapsed),
        heartbeat_at=now,
    )
    if step == LearningLoop.Step.SCORE:
        v = version(project, 1, labels_used=10, bal_acc=0.5, base=0.4)
        loop.scoring_run = ScoringRun.objects.create(
            project=project,
            model_version=v,
            status=RunStatus.RUNNING,
            progress=progress,
            phase="scoring",
            **run_times,
        )
        loop.save()
    return loop


def finished_loop(project, timings):
    return LearningLoop.objects.create(
        project=project, status=RunStatus.SUCCEEDED, step=LearningLoop.Step.DONE, timings=timings
    )

"""The loop train -> score -> select -> push as a chain whose state lives in the database: one
active loop per project, and a periodic resume that restarts whatever a crashed worker left
behind.

This module owns the order. The steps (training, scoring chunks, selection, the Label Studio
push) do their work and return; the tasks that run them hand the outcome here
(`loop_train`, `loop_score_chunk`), and this module starts the next step. Labeling and
imports tell it that labels changed, or that a project is ready for its first batch, by
enqueueing `jobs.LABELS_CHANGED` / `jobs.KICKOFF`, never by importing it."""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from loupe import jobs
from loupe.datasets.models import Item, ItemState, Split
from loupe.datasets.services import import_jobs_resume
from loupe.errors import ApplicationError
from loupe.labeling.models import Decision, GroundTruth
from loupe.labeling.services import round_selected
from loupe.learning.explanations import selection_round_explain
from loupe.learning.models import (
    ACTIVE_STATUSES,
    LearningLoop,
    ModelVersion,
    RunStatus,
    ScoringChunk,
    ScoringRun,
    SelectionRound,
    TrainingRun,
    Trigger,
)
from loupe.learning.scoring import (
    scoring_chunk_execute,
    scoring_chunks_pending,
    scoring_run_create,
)
from loupe.learning.selection import selection_round_create
from loupe.learning.training import (
    MIN_LABELS,
    training_run_cancel,
    training_run_create,
    training_run_execute,
)
from loupe.projects.models import Project
from loupe.runs import run_finish, stale_after

logger = logging.getLogger(__name__)


def loop_active(*, project: Project) -> LearningLoop | None:
    return LearningLoop.objects.filter(project=project, status__in=ACTIVE_STATUSES).first()


def loop_start(
    *,
    project: Project,
    trigger: str = Trigger.MANUAL,
    created_by=None,
    force: bool = True,
) -> tuple[LearningLoop, bool]:
    """Starts train -> score -> select, unless a loop is already active for the project: then
    the trigger folds into it. Returns (loop, created).

    Without `force`, a project whose latest model has seen every label is refused: retraining
    would give the same model and a new batch for no reason. With too few labels to train, the
    loop skips training and selects a cold-start batch."""
    active = loop_active(project=project)
    if active is not None:
        return active, False
    new = new_labels_since_last_training(project=project, include_imported=True)
    latest = ModelVersion.objects.filter(project=project).order_by("-version").first()
    if not force and latest is not None and new == 0:
        raise ApplicationError(
            f"No new labels since model v{latest.version}: retraining would give the same model."
            " Start it with force=true to retrain anyway.",
            code="conflict",
            status=409,
            extra={"latest_version": latest.version},
        )
    cold = _trainable_labels(project) < MIN_LABELS
    phase = "training"
    if cold:
        phase = "cold start: selecting a first batch"
    elif latest is not None and new == 0:
        # Fits the 40 characters of a run's phase.
        phase = f"forced retrain, no labels since v{latest.version}"
    try:
        with transaction.atomic():
            now = timezone.now()
            loop = LearningLoop.objects.create(
                project=project,
                trigger=trigger,
                created_by=created_by,
                status=RunStatus.RUNNING,
                step=LearningLoop.Step.SELECT if cold else LearningLoop.Step.TRAIN,
                phase=phase,
                progress=2 / 3 if cold else 0.0,
                started_at=now,
                heartbeat_at=now,
            )
            if cold:
                jobs.enqueue(jobs.SELECT, loop_id=loop.pk)
            else:
                run = training_run_create(
                    project=project, trigger=trigger, created_by=created_by, enqueue=False
                )
                loop.training_run = run
                loop.save(update_fields=["training_run"])
                jobs.enqueue(jobs.TRAIN, training_run_id=run.pk)
    except IntegrityError:
        return loop_active(project=project), False
    return loop, True


def _trainable_labels(project: Project) -> int:
    """Usable labels outside the holdout: what training would learn from."""
    return (
        GroundTruth.objects.filter(project=project, needs_review=False, in_holdout=False)
        .values("pk")
        .count()
    )


def _loop_of(**run) -> LearningLoop | None:
    return LearningLoop.objects.filter(status=RunStatus.RUNNING, **run).first()


def _timing(loop: LearningLoop, step: str, run) -> None:
    if run.started_at and run.finished_at:
        loop.timings[step] = round((run.finished_at - run.started_at).total_seconds(), 3)


def loop_train(*, training_run_id: int) -> TrainingRun:
    """The training step as its task runs it: train, then move the loop on. Safe to run twice."""
    run = training_run_execute(training_run_id=training_run_id)
    loop_on_training_finished(training_run=run)
    return run


def loop_score_chunk(*, chunk_id: int) -> ScoringChunk | None:
    """The scoring step as its task runs it: score the chunk (and the run's other queued
    chunks), then, once the run has ended, move the loop on. Safe to run twice.

    The loop hears of the run outside the chunk's own failure handling: a chunk whose
    predictions are written stays succeeded even when the loop cannot be told (a broker down
    as it moves on; the periodic resume sends that step again)."""
    chunk = scoring_chunk_execute(chunk_id=chunk_id)
    if chunk is not None:
        run = ScoringRun.objects.get(pk=chunk.scoring_run_id)
        if run.status not in ACTIVE_STATUSES:
            loop_on_scoring_finished(scoring_run=run)
    return chunk


def loop_on_training_finished(*, training_run: TrainingRun) -> None:
    """After a training run: score the pool with the new version, or end the loop. Nothing
    while the run is still going, and nothing twice for one run."""
    if training_run.status in ACTIVE_STATUSES:
        return
    loop = _loop_of(training_run=training_run)
    if loop is None:
        return
    if training_run.status != RunStatus.SUCCEEDED:
        status = (
            RunStatus.CANCELLED if training_run.status == RunStatus.CANCELLED else RunStatus.FAILED
        )
        run_finish(loop, status, error=training_run.error, phase=f"training {training_run.status}")
        return
    _timing(loop, "train", training_run)
    with transaction.atomic():
        locked = LearningLoop.objects.select_for_update().get(pk=loop.pk)
        if locked.scoring_run_id:  # a duplicate notification
            return
        scoring = scoring_run_create(model_version=training_run.model_version)
        LearningLoop.objects.filter(pk=loop.pk).update(
            scoring_run=scoring,
            step=LearningLoop.Step.SCORE,
            phase="scoring the pool",
            progress=1 / 3,
            heartbeat_at=timezone.now(),
            timings=loop.timings,
        )
    if scoring.status == RunStatus.SUCCEEDED:  # empty pool
        loop_on_scoring_finished(scoring_run=scoring)


def loop_on_scoring_finished(*, scoring_run: ScoringRun) -> None:
    """After a scoring run: select the next batch, or end the loop. Nothing while the run is
    still going, and the selection is sent once however often the loop hears of the run."""
    if scoring_run.status in ACTIVE_STATUSES:
        return
    loop = _loop_of(scoring_run=scoring_run)
    if loop is None:
        return
    if scoring_run.status != RunStatus.SUCCEEDED:
        status = (
            RunStatus.CANCELLED if scoring_run.status == RunStatus.CANCELLED else RunStatus.FAILED
        )
        run_finish(loop, status, error=scoring_run.error, phase=f"scoring {scoring_run.status}")
        return
    _timing(loop, "score", scoring_run)
    with transaction.atomic():
        moved = LearningLoop.objects.filter(
            pk=loop.pk, status=RunStatus.RUNNING, step=LearningLoop.Step.SCORE
        ).update(
            step=LearningLoop.Step.SELECT,
            phase="selecting",
            progress=2 / 3,
            heartbeat_at=timezone.now(),
            timings=loop.timings,
        )
        if moved:  # else a duplicate notification
            jobs.enqueue(jobs.SELECT, loop_id=loop.pk)


def loop_select(*, loop_id: int) -> LearningLoop:
    """The last step: pick the next batch. Safe to run twice."""
    started = timezone.now()
    with transaction.atomic():
        loop = LearningLoop.objects.select_for_update().get(pk=loop_id)
        if loop.status != RunStatus.RUNNING or loop.selection_round_id:
            return loop
        try:
            selection_round = selection_round_create(
                project=loop.project, scoring_run=loop.scoring_run
            )
        except Exception as exc:
            logger.exception("selection of loop %s failed", loop.pk)
            run_finish(loop, RunStatus.FAILED, error=f"selection: {exc}", phase="failed")
            return loop
        loop.timings["select"] = round((timezone.now() - started).total_seconds(), 3)
        loop.selection_round = selection_round
        loop.step = LearningLoop.Step.DONE
        loop.save(update_fields=["selection_round", "step", "timings"])
        # Once this transaction commits: explain the picks, then hand them to Label Studio.
        jobs.enqueue(jobs.EXPLAIN_ROUND, selection_round_id=selection_round.pk)
        run_finish(loop, RunStatus.SUCCEEDED, phase="next batch selected")
    return loop


def loop_explain(*, selection_round_id: int) -> None:
    """After selection: each pick gets its saliency overlay and nearest labeled items, then
    the batch goes to Label Studio, whose tasks carry them. An explanation that fails is
    logged and the batch goes out without it: explaining never holds up the experts. Were
    this message lost, the periodic push of draft rounds sends the batch all the same (and a
    late explanation still reaches the gallery)."""
    selection_round = SelectionRound.objects.filter(pk=selection_round_id).first()
    if selection_round is None:
        return
    try:
        # A savepoint: a failed write inside leaves the connection usable for the push.
        with transaction.atomic():
            selection_round_explain(selection_round=selection_round)
    except Exception:
        logger.exception("explaining the picks of %s failed", selection_round)
    if selection_round.status == SelectionRound.Status.DRAFT:
        round_selected(selection_round=selection_round)


def loop_cancel(*, loop: LearningLoop) -> LearningLoop:
    if loop.training_run_id:
        training_run_cancel(run=loop.training_run)
    if loop.scoring_run_id:
        ScoringRun.objects.filter(pk=loop.scoring_run_id, status__in=ACTIVE_STATUSES).update(
            cancel_requested=True, status=RunStatus.CANCELLED, finished_at=timezone.now()
        )
    run_finish(loop, RunStatus.CANCELLED, phase="cancelled")
    return loop


def runs_resume() -> dict[str, int]:
    """Re-sends the work that a crashed worker left: queued or abandoned training runs,
    scoring chunks, pending selections, and imports (`import_jobs_resume`). Run periodically
    by beat; harmless when nothing is stuck, because every step guards on its status."""
    stale = timezone.now() - stale_after()
    resent = {"train": 0, "chunks": 0, "select": 0}
    resent["imports"] = len(import_jobs_resume())
    for run in TrainingRun.objects.filter(
        Q(status=RunStatus.QUEUED, created_at__lt=stale)
        | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
    ):
        jobs.enqueue(jobs.TRAIN, training_run_id=run.pk)
        resent["train"] += 1
    for loop in LearningLoop.objects.filter(status=RunStatus.RUNNING):
        if loop.step == LearningLoop.Step.TRAIN and loop.training_run.status not in ACTIVE_STATUSES:
            loop_on_training_finished(training_run=loop.training_run)
        elif loop.step == LearningLoop.Step.SCORE and loop.scoring_run:
            if loop.scoring_run.status not in ACTIVE_STATUSES:  # ended, the loop never told
                loop_on_scoring_finished(scoring_run=loop.scoring_run)
                continue
            for chunk_id in scoring_chunks_pending(run=loop.scoring_run):
                jobs.enqueue(jobs.SCORE_CHUNK, chunk_id=chunk_id)
                resent["chunks"] += 1
        elif loop.step == LearningLoop.Step.SELECT and loop.heartbeat_at < stale:
            jobs.enqueue(jobs.SELECT, loop_id=loop.pk)
            resent["select"] += 1
    return resent


def _last_model_trained_at(project: Project):
    """When the latest model version's training began (labels from then on are new to it)."""
    last = (
        ModelVersion.objects.filter(project=project)
        .order_by("-version")
        .values_list("training_run__created_at", flat=True)
        .first()
    )
    return last


def new_labels_since_last_training(*, project: Project, include_imported: bool = False) -> int:
    """Usable labels given or changed since the latest model version began training (all of
    them before the first version). Experts' labels only, unless `include_imported`."""
    labels = GroundTruth.objects.filter(project=project, needs_review=False)
    if not include_imported:
        labels = labels.exclude(decided_by=Decision.IMPORTED)
    since = _last_model_trained_at(project)
    if since is not None:
        labels = labels.filter(updated_at__gt=since)
    return labels.count()


def open_work(*, project: Project) -> int:
    """Items the experts still have to answer: queued or in annotation, except ties waiting
    for a reviewer (those wait on a person, not on the batch)."""
    return (
        Item.objects.filter(project=project, state__in=[ItemState.QUEUED, ItemState.IN_ANNOTATION])
        .exclude(ground_truth__needs_review=True)
        .count()
    )


def _due_trigger(project: Project) -> str | None:
    """Why a loop should start now, or None. The batch being done is a trigger of its own,
    whatever the settings, so the loop never stalls with experts out of work;
    `retrain_every_n_labels` can only make it start earlier."""
    new = new_labels_since_last_training(project=project)
    if new == 0:
        return None
    if project.retrain_every_n_labels and new >= project.retrain_every_n_labels:
        return Trigger.LABELS
    if open_work(project=project) == 0:
        return Trigger.BATCH_DONE
    return None


def loop_trigger_on_labels(*, project: Project) -> LearningLoop | None:
    """The doorway labeling uses when labels changed: starts a loop once
    `retrain_every_n_labels` new labels arrived, or when the experts finished their batch and
    new labels exist. Debounced: while a loop is active, further triggers fold into it."""
    if loop_active(project=project):
        return None
    trigger = _due_trigger(project)
    if trigger is None:
        return None
    loop, created = loop_start(project=project, trigger=trigger)
    return loop if created else None


def loop_kickoff(*, project: Project) -> LearningLoop | None:
    """The first loop of a project starts by itself once the project is linked to Label
    Studio and has an unlabeled pool, so the experts get a batch without anyone pressing
    retrain (a cold start when there are too few labels to train). Harmless to call often:
    a project that ever had a loop is left to the other triggers."""
    if not project.ls_project_id or LearningLoop.objects.filter(project=project).exists():
        return None
    pool = Item.objects.filter(project=project, split=Split.POOL, state=ItemState.UNLABELED)
    if open_work(project=project) or not pool.exists():
        return None
    loop, created = loop_start(project=project, trigger=Trigger.SETUP)
    return loop if created else None


def loops_scheduled() -> list[int]:
    """Beat runs this every minute. Projects with a retraining schedule get a loop when their
    period has passed and new labels arrived; any project whose batch is done with new labels
    and no loop gets one too (a trigger lost with a worker, or a batch ended by a skip)."""
    started = []
    for project in Project.objects.all():
        if loop_active(project=project):
            continue
        first = loop_kickoff(project=project)
        if first is not None:
            started.append(first.pk)
            continue
        trigger = _due_trigger(project)
        if trigger is None and project.retrain_every_minutes > 0:
            last = LearningLoop.objects.filter(project=project).order_by("-created_at").first()
            due = last is None or last.created_at < timezone.now() - timedelta(
                minutes=project.retrain_every_minutes
            )
            if due and new_labels_since_last_training(project=project) > 0:
                trigger = Trigger.SCHEDULE
        if trigger is not None:
            loop, created = loop_start(project=project, trigger=trigger)
            if created:
                started.append(loop.pk)
    return started

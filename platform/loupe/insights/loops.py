"""Where a learning loop stands: its step, its progress over the whole loop and the time it
has left. A loop's own row only moves between steps; the runs of its steps carry the
progress, and the project's last finished loop says how long each step takes."""

from __future__ import annotations

from django.utils import timezone

from loupe.datasets.models import Item, ItemState
from loupe.labeling.models import GroundTruth
from loupe.learning.loop import loop_active, new_labels_since_last_training, open_work
from loupe.learning.models import ACTIVE_STATUSES, LearningLoop, RunStatus, SelectionRound
from loupe.projects.models import Project

STEPS = (LearningLoop.Step.TRAIN, LearningLoop.Step.SCORE, LearningLoop.Step.SELECT)
# Shares of a loop's time before the project has finished one: training dominates.
DEFAULT_STEP_SHARES = {
    LearningLoop.Step.TRAIN: 0.8,
    LearningLoop.Step.SCORE: 0.15,
    LearningLoop.Step.SELECT: 0.05,
}
# A step never weighs less than this, so a step that took no time once still shows.
MIN_STEP_SECONDS = 0.5
# Loops looked at for step times: the latest full loops of the project.
RECENT_LOOPS = 10


def step_seconds(*, project: Project) -> dict[str, float] | None:
    """Seconds each step took in the project's latest successful loop that ran all three
    (a cold start only selects), or None before one."""
    recent = (
        LearningLoop.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .order_by("-id")
        .values_list("timings", flat=True)[:RECENT_LOOPS]
    )
    for timings in recent:
        if timings and all(step in timings for step in STEPS):
            return {step: max(MIN_STEP_SECONDS, float(timings[step])) for step in STEPS}
    return None


def _shares(seconds: dict[str, float] | None) -> dict[str, float]:
    if seconds is None:
        return DEFAULT_STEP_SHARES
    total = sum(seconds.values())
    return {step: seconds[step] / total for step in STEPS}


def _step_run(loop: LearningLoop):
    if loop.step == LearningLoop.Step.TRAIN:
        return loop.training_run
    if loop.step == LearningLoop.Step.SCORE:
        return loop.scoring_run
    return None


def _run_left(run, now) -> float | None:
    """Seconds the run has left at its pace so far, counted from now, not from its last
    heartbeat."""
    left = run.eta_seconds if run is not None else None
    if left is None:
        return None
    since_beat = (now - (run.heartbeat_at or run.started_at)).total_seconds()
    return max(0.0, left - since_beat)


def _cold_start(loop: LearningLoop) -> bool:
    """A loop that had too few labels to train: it only selects a first batch."""
    return loop.training_run_id is None and loop.step in (
        LearningLoop.Step.SELECT,
        LearningLoop.Step.DONE,
    )


def loop_progress(*, loop: LearningLoop, seconds: dict[str, float] | None = None) -> dict:
    """The loop's step, progress over the whole loop (each step weighted by the time it took
    in the project's last full loop, or by DEFAULT_STEP_SHARES), and the seconds left: the
    current run's remaining time at its pace, plus the later steps at their last durations
    (or in proportion to the current step when none is known). `eta_seconds` is None while
    there is no pace yet (a run waiting for a worker, or just started). A cold start (too few
    labels to train) is one step, selection.

    `seconds` is step_seconds(project=...), passed by callers that show several loops."""
    active = loop.status in ACTIVE_STATUSES
    now = timezone.now()
    cold = _cold_start(loop)
    steps = (LearningLoop.Step.SELECT,) if cold else STEPS
    shares = {LearningLoop.Step.SELECT: 1.0} if cold else _shares(seconds)
    run = _step_run(loop)
    if loop.step == LearningLoop.Step.DONE:
        done_share, within = 1.0, 0.0
    else:
        index = steps.index(loop.step)
        done_share = sum(shares[s] for s in steps[:index])
        within = run.progress if run is not None else 0.0
    progress = min(1.0, done_share + shares.get(loop.step, 0.0) * within)
    if loop.status == RunStatus.SUCCEEDED:
        progress = 1.0

    eta = None
    waiting = False
    if active and loop.step != LearningLoop.Step.DONE:
        later = steps[steps.index(loop.step) + 1 :]
        waiting = run is not None and run.status == RunStatus.QUEUED
        if loop.step == LearningLoop.Step.SELECT:
            started = loop.heartbeat_at or loop.started_at or now
            expected = seconds[LearningLoop.Step.SELECT] if seconds else None
            if expected is not None:
                eta = max(0.0, expected - (now - started).total_seconds())
        else:
            left = _run_left(run, now)
            if left is not None:
                if seconds is not None:
                    rest = sum(seconds[s] for s in later)
                else:
                    step_total = (now - run.started_at).total_seconds() + left
                    rest = step_total * sum(shares[s] for s in later) / shares[loop.step]
                eta = left + rest
    return {
        "id": loop.pk,
        "status": loop.status,
        "active": active,
        "cold_start": cold,
        "step": loop.step,
        "step_label": loop.get_step_display(),
        "step_number": steps.index(loop.step) + 1 if loop.step in steps else len(steps),
        "steps": len(steps),
        "phase": (run.phase if run is not None and run.phase else loop.phase),
        # The loop's own account of why it runs the way it does (a cold start, a retrain
        # without new labels that was asked for).
        "loop_phase": loop.phase,
        "step_progress": within,
        "progress": progress,
        "waiting_for_worker": waiting,
        "eta_seconds": eta,
        "elapsed_seconds": (now - loop.started_at).total_seconds()
        if loop.started_at and active
        else None,
        "timed_by_last_loop": seconds is not None,
    }


def loop_current(*, project: Project) -> LearningLoop | None:
    """The project's active loop, or else its latest loop (None before any)."""
    loops = LearningLoop.objects.filter(project=project).select_related(
        "training_run", "scoring_run", "selection_round"
    )
    return loops.filter(status__in=ACTIVE_STATUSES).first() or loops.order_by("-id").first()


def loop_status(*, project: Project) -> dict:
    """What the loop is doing or waiting for, in words a manager reads, with the numbers
    behind them: `state` (training | scoring | selecting | labeling | waiting | failed | idle),
    `message`, and `progress` / `eta_seconds` over the whole loop while one runs."""
    active = loop_active(project=project)
    if active is not None:
        state = {
            LearningLoop.Step.TRAIN: "training",
            LearningLoop.Step.SCORE: "scoring",
        }.get(active.step, "selecting")
        # Over the whole loop, as the pages show it.
        shown = loop_progress(loop=active, seconds=step_seconds(project=project))
        progress, eta = shown["progress"], shown["eta_seconds"]
        message = {
            "training": "training a new model",
            "scoring": "scoring the pool with the new model",
            "selecting": "selecting the next batch",
        }[state]
        message += f" ({progress:.0%}"
        message += f", about {eta:.0f} s left)" if eta is not None else ")"
        return {
            "state": state,
            "message": message,
            "loop_id": active.pk,
            "progress": progress,
            "eta_seconds": eta,
        }
    base = {"loop_id": None, "progress": None, "eta_seconds": None}
    last = LearningLoop.objects.filter(project=project).order_by("-created_at").first()
    if last is not None and last.status == RunStatus.FAILED:
        return {**base, "state": "failed", "message": f"the last loop failed: {last.error}"}
    open_items = open_work(project=project)
    new = new_labels_since_last_training(project=project)
    if open_items:
        draft = (
            SelectionRound.objects.filter(project=project, status=SelectionRound.Status.DRAFT)
            .exclude(push_error="")
            .order_by("-number")
            .first()
        )
        if draft is not None:
            message = f"batch {draft.number} waits for Label Studio: {draft.push_error}"
            return {**base, "state": "waiting", "message": message, "open_items": open_items}
        where = "in Label Studio" if project.ls_project_id else "(not linked to Label Studio)"
        message = f"batch ready {where}: {open_items} items to label"
        every = project.retrain_every_n_labels
        # The label count matters only when it comes before the batch's end.
        if every and new < every and every - new < open_items:
            message += (
                f"; the next loop starts after {every - new} more labels or when the batch is done"
            )
        else:
            message += "; the next loop starts when the batch is done"
        return {**base, "state": "labeling", "message": message, "open_items": open_items}
    if new:
        return {**base, "state": "waiting", "message": "the batch is done: starting the next loop"}
    labels = GroundTruth.objects.filter(project=project, needs_review=False).count()
    if labels == 0:
        message = "waiting for labels: import labeled examples or start a cold-start batch"
    elif not Item.objects.filter(project=project, state=ItemState.UNLABELED).exists():
        message = "the pool is exhausted: every item is labeled or skipped"
    else:
        message = "idle: no batch open and no new labels (start a loop to select one)"
    return {**base, "state": "idle", "message": message, "open_items": 0}

"""Where a learning loop stands: its step, its progress over the whole loop and the time it
has left. A loop's own row only moves between steps; the runs of its steps carry the
progress, and the project's last finished loop says how long each step takes."""

from __future__ import annotations

from django.utils import timezone

from loupe.learning.models import ACTIVE_STATUSES, LearningLoop, RunStatus
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

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


def step_seconds(*, project: Project) -> dict[str, float] | None:
    """Seconds each step took in the project's latest successful loop, or None before one."""
    timings = (
        LearningLoop.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .order_by("-id")
        .values_list("timings", flat=True)
        .first()
    )
    if not timings or any(step not in timings for step in STEPS):
        return None
    return {step: max(MIN_STEP_SECONDS, float(timings[step])) for step in STEPS}


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


def loop_progress(*, loop: LearningLoop, seconds: dict[str, float] | None = None) -> dict:
    """The loop's step, progress over the whole loop (each step weighted by the time it took
    in the project's last successful loop, or by DEFAULT_STEP_SHARES), and the seconds left:
    the current run's remaining time at its pace, plus the later steps at their last
    durations (or in proportion to the current step when none is known). `eta_seconds` is
    None while there is no pace yet (a run waiting for a worker, or just started).

    `seconds` is step_seconds(project=...), passed by callers that show several loops."""
    shares = _shares(seconds)
    active = loop.status in ACTIVE_STATUSES
    run = _step_run(loop)
    if loop.step == LearningLoop.Step.DONE:
        done_share, within = 1.0, 0.0
    else:
        index = STEPS.index(loop.step)
        done_share = sum(shares[s] for s in STEPS[:index])
        within = run.progress if run is not None else 0.0
    progress = min(1.0, done_share + shares.get(loop.step, 0.0) * within)
    if loop.status == RunStatus.SUCCEEDED:
        progress = 1.0

    now = timezone.now()
    eta = None
    waiting = False
    if active and loop.step != LearningLoop.Step.DONE:
        later = STEPS[STEPS.index(loop.step) + 1 :]
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
        "step": loop.step,
        "step_label": loop.get_step_display(),
        "step_number": STEPS.index(loop.step) + 1 if loop.step in STEPS else len(STEPS),
        "steps": len(STEPS),
        "phase": (run.phase if run is not None and run.phase else loop.phase),
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

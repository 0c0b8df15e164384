"""Learning tasks: training and scoring go to the `gpu` queue, the rest to `default`
(loupe.jobs.TASKS). Each task is thin: it hands its ids to the loop, which runs the step and
moves on; every step guards on status, so acks_late with reject-on-worker-lost is safe: a
message redelivered after a crash finds the work done or takes it over."""

from config.celery import app
from loupe import jobs

IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}


@app.task(name=jobs.TRAIN, **IDEMPOTENT)
def train(*, training_run_id: int) -> None:
    from loupe.learning.loop import loop_train

    loop_train(training_run_id=training_run_id)


@app.task(name=jobs.SCORE_CHUNK, **IDEMPOTENT)
def score_chunk(*, chunk_id: int) -> None:
    from loupe.learning.loop import loop_score_chunk

    loop_score_chunk(chunk_id=chunk_id)


@app.task(name=jobs.SELECT, **IDEMPOTENT)
def select(*, loop_id: int) -> None:
    from loupe.learning.loop import loop_select

    loop_select(loop_id=loop_id)


@app.task(name=jobs.EXPLAIN_ROUND, **IDEMPOTENT)
def explain_round(*, selection_round_id: int) -> None:
    from loupe.learning.loop import loop_explain

    loop_explain(selection_round_id=selection_round_id)


@app.task(name=jobs.LABELS_CHANGED, **IDEMPOTENT)
def labels_changed(*, project_id: int) -> None:
    from loupe.learning.loop import loop_trigger_on_labels
    from loupe.projects.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        loop_trigger_on_labels(project=project)


@app.task(name=jobs.KICKOFF, **IDEMPOTENT)
def kickoff(*, project_id: int) -> None:
    from loupe.learning.loop import loop_kickoff
    from loupe.projects.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        loop_kickoff(project=project)


@app.task(name=jobs.SCAN_LABELS, **IDEMPOTENT)
def scan_labels(*, model_version_id: int) -> None:
    from loupe.learning.label_suspects import label_suspects_scan_by_id

    label_suspects_scan_by_id(model_version_id=model_version_id)


@app.task(name=jobs.RESUME)
def resume() -> None:
    from loupe.learning.loop import runs_resume

    runs_resume()


@app.task(name=jobs.SCHEDULED)
def scheduled() -> None:
    from loupe.learning.loop import loops_scheduled

    loops_scheduled()

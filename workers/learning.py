"""Learning tasks: training and scoring go to the `gpu` queue, the rest to `default`.
Each task is thin and its service guards on status, so acks_late with reject-on-worker-lost
is safe: a message redelivered after a crash finds the work done or takes it over."""

from config.celery import app

IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}


@app.task(name="learning.train", **IDEMPOTENT)
def train(*, training_run_id: int) -> None:
    from loupe.learning.training import training_run_execute

    training_run_execute(training_run_id=training_run_id)


@app.task(name="learning.score_chunk", **IDEMPOTENT)
def score_chunk(*, chunk_id: int) -> None:
    from loupe.learning.scoring import scoring_chunk_execute

    scoring_chunk_execute(chunk_id=chunk_id)


@app.task(name="learning.select", **IDEMPOTENT)
def select(*, loop_id: int) -> None:
    from loupe.learning.loop import loop_select

    loop_select(loop_id=loop_id)


@app.task(name="learning.explain_round", **IDEMPOTENT)
def explain_round(*, selection_round_id: int) -> None:
    from loupe.learning.loop import loop_explain

    loop_explain(selection_round_id=selection_round_id)


@app.task(name="learning.scan_labels", **IDEMPOTENT)
def scan_labels(*, model_version_id: int) -> None:
    from loupe.learning.label_suspects import label_suspects_scan_by_id

    label_suspects_scan_by_id(model_version_id=model_version_id)


@app.task(name="learning.resume")
def resume() -> None:
    from loupe.learning.loop import runs_resume

    runs_resume()


@app.task(name="learning.scheduled")
def scheduled() -> None:
    from loupe.learning.loop import loops_scheduled

    loops_scheduled()

"""Celery tasks. Thin: take ids, call a service. Every service called here guards on the
row's status, so a redelivered message does nothing twice."""

from config.celery import app
from loupe import jobs


@app.task(name=jobs.IMPORT_RUN, acks_late=True, reject_on_worker_lost=True)
def import_run(*, import_job_id: int) -> None:
    from loupe.datasets.services import import_job_run

    import_job_run(import_job_id=import_job_id)

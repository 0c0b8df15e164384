"""The single doorway from the web side to the workers: enqueue a task by its name.

The web side never imports `workers`; it names the task, and the Celery app from
config/celery.py routes it. Messages are sent after the surrounding transaction commits, so a
worker never looks for a row that is not there yet."""

import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from config.celery import app

logger = logging.getLogger(__name__)

QUEUES = ("default", "gpu")


def enqueue(task_name: str, *, queue: str = "default", **kwargs: Any) -> None:
    """Sends `task_name(**kwargs)` to `queue` once the current transaction commits.
    With LOUPE_JOBS_EAGER the task runs in this process instead (tests, one-off scripts)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")

    def send() -> None:
        if settings.LOUPE_JOBS_EAGER:
            app.loader.import_default_modules()
            app.tasks[task_name].apply(kwargs=kwargs, throw=True)
            return
        app.send_task(task_name, kwargs=kwargs, queue=queue)
        # Ids at INFO; bodies (a webhook's payload) only at DEBUG: they are large and may
        # carry what annotators wrote.
        logger.info("enqueued %s on %s with %s", task_name, queue, _summary(kwargs))
        logger.debug("enqueued %s with %s", task_name, kwargs)

    transaction.on_commit(send)


def _summary(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        name: f"<{type(value).__name__}>" if isinstance(value, dict | list) else value
        for name, value in kwargs.items()
    }

"""The single doorway from the web side to the workers: enqueue a task by its name.

The web side never imports `workers`; it names the task, and the Celery app from
config/celery.py routes it. Messages are sent after the surrounding transaction commits, so a
worker never looks for a row that is not there yet.

TASKS is the one table of task names and their queues: the workers register their tasks
under these names, Celery routes by it (workers.routing), and every call site names a task
by its constant here."""

import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from config.celery import app

logger = logging.getLogger(__name__)

QUEUES = ("default", "gpu")

IMPORT_RUN = "datasets.import_run"
TRAIN = "learning.train"
SCORE_CHUNK = "learning.score_chunk"
SELECT = "learning.select"
EXPLAIN_ROUND = "learning.explain_round"
SCAN_LABELS = "learning.scan_labels"
LABELS_CHANGED = "learning.labels_changed"
KICKOFF = "learning.kickoff"
RESUME = "learning.resume"
SCHEDULED = "learning.scheduled"
PUSH_ROUND = "labeling.push_round"
PUSH_PENDING = "labeling.push_pending"
SYNC_PROJECT = "labeling.sync_project"
APPLY_EVENTS = "labeling.apply_events"
RECONCILE_PROJECT = "labeling.reconcile_project"
RECONCILE_ALL = "labeling.reconcile_all"

# Training, scoring and the label-suspect scan need the accelerator: they go to `gpu` (a CPU
# worker may consume it too, as `make demo` does). Imports, Label Studio sync, selection and
# the loop's own steps go to `default`.
TASKS: dict[str, str] = {
    IMPORT_RUN: "default",
    TRAIN: "gpu",
    SCORE_CHUNK: "gpu",
    SELECT: "default",
    EXPLAIN_ROUND: "default",
    SCAN_LABELS: "gpu",
    LABELS_CHANGED: "default",
    KICKOFF: "default",
    RESUME: "default",
    SCHEDULED: "default",
    PUSH_ROUND: "default",
    PUSH_PENDING: "default",
    SYNC_PROJECT: "default",
    APPLY_EVENTS: "default",
    RECONCILE_PROJECT: "default",
    RECONCILE_ALL: "default",
}


def queue_of(task_name: str) -> str:
    """The queue a task goes to (TASKS); an unknown name is a programming error."""
    if task_name not in TASKS:
        raise ValueError(f"unknown task {task_name!r}")
    return TASKS[task_name]


def enqueue(task_name: str, **kwargs: Any) -> None:
    """Sends `task_name(**kwargs)` to its queue once the current transaction commits.
    With LOUPE_JOBS_EAGER the task runs in this process instead (tests, one-off scripts)."""
    queue = queue_of(task_name)

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

"""Queue routing: every task goes to the queue loupe.jobs.TASKS names for it, whoever sends it
(loupe.jobs.enqueue, beat, a script's send_task)."""

from loupe.jobs import TASKS


def route(name, args, kwargs, options, task=None, **kw):
    """A Celery router (CELERY_TASK_ROUTES): the table's queue, else Celery's default."""
    queue = TASKS.get(name)
    return {"queue": queue} if queue else None

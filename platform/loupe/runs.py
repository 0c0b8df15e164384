"""One lifecycle for every background run: imports, training runs, scoring runs and their
chunks. A run is `queued -> running -> succeeded | failed | cancelled`. A worker only starts
a run that is queued, or one whose worker died (no heartbeat for LOUPE_STALE_AFTER_SECONDS);
so a task delivered twice, or redelivered after a crash, never runs the same work twice at
the same time. The rows differ in which bookkeeping columns they have (attempts, worker,
progress, phase, cancel_requested); each transition writes the ones its row has.

Apps import this module; it imports no app, so any of them may use it."""

import socket
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Model
from django.utils import timezone


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
FOLLOW_SECONDS = 0.5


class RunCancelled(Exception):
    """Raised inside a run when someone asked to cancel it."""


def stale_after() -> timedelta:
    """A running run whose heartbeat is older than this was abandoned by a dead worker."""
    return timedelta(seconds=settings.LOUPE_STALE_AFTER_SECONDS)


def _has(model: type[Model], field: str) -> bool:
    return any(f.name == field for f in model._meta.concrete_fields)


def run_claim(
    model: type[Model],
    run_id: int,
    *,
    on_takeover: Callable[[int], None] | None = None,
    **takeover_fields,
) -> Model | None:
    """queued -> running, or take over a running run whose worker stopped beating.
    Returns the claimed run, or None when it is gone, someone else owns it or it has ended.

    A takeover also writes `takeover_fields` and calls `on_takeover(run_id)` in the same
    transaction (an import resets what it counted, to read its source again)."""
    now = timezone.now()
    # Read first: a message for a run that is done or held by a live worker writes nothing.
    # On SQLite any write, even one that matches no row, can make another worker's
    # read-then-write transaction fail with "database is locked".
    state = model.objects.filter(pk=run_id).values_list("status", "heartbeat_at").first()
    if state is None:
        return None
    status, heartbeat_at = state
    fields = {"status": RunStatus.RUNNING, "heartbeat_at": now}
    if _has(model, "worker"):
        fields["worker"] = socket.gethostname()
    if _has(model, "attempts"):
        fields["attempts"] = F("attempts") + 1
    claimed = 0
    if status == RunStatus.QUEUED:
        started = {"started_at": now} if _has(model, "started_at") else {}
        claimed = model.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            **started, **fields
        )
    elif status == RunStatus.RUNNING and heartbeat_at and heartbeat_at < now - stale_after():
        with transaction.atomic():
            claimed = model.objects.filter(
                pk=run_id, status=RunStatus.RUNNING, heartbeat_at__lt=now - stale_after()
            ).update(**fields, **takeover_fields)
            if claimed and on_takeover is not None:
                on_takeover(run_id)
    return model.objects.get(pk=run_id) if claimed else None


def run_beat(run, *, progress: float | None = None, phase: str | None = None, **fields) -> None:
    """Records liveness, progress and any other `fields`; raises RunCancelled when a cancel
    was requested (on runs that can be cancelled)."""
    changes = {"heartbeat_at": timezone.now(), **fields}
    if progress is not None:
        changes["progress"] = max(0.0, min(1.0, progress))
    if phase is not None:
        changes["phase"] = phase
    model = type(run)
    model.objects.filter(pk=run.pk).update(**changes)
    for key, value in changes.items():
        setattr(run, key, value)
    if _has(model, "cancel_requested") and (
        model.objects.filter(pk=run.pk, cancel_requested=True).exists()
    ):
        raise RunCancelled()


def run_finish(run, status: str, *, error: str = "", **fields) -> bool:
    """running (or queued) -> a final status. Returns False when the run had already ended."""
    model = type(run)
    changes = {"status": status, "error": error[:5000], "finished_at": timezone.now(), **fields}
    if status == RunStatus.SUCCEEDED and _has(model, "progress"):
        changes["progress"] = 1.0
    done = model.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(**changes)
    for key, value in changes.items():
        setattr(run, key, value)
    return bool(done)


def run_follow(run, *, show: Callable[[Model], None], seconds: float = FOLLOW_SECONDS):
    """Reads the run again every `seconds` and hands it to `show` (a progress bar), until it
    has ended; returns it as it ended. What a command that waits on a worker runs."""
    model = type(run)
    while True:
        run = model.objects.get(pk=run.pk)
        show(run)
        if run.status not in ACTIVE_STATUSES:
            return run
        time.sleep(seconds)

"""Status transitions shared by every background run. A worker only starts a run that is
queued, or one whose worker died (no heartbeat for STALE_AFTER); so a task delivered twice,
or redelivered after a crash, never runs the same work twice at the same time."""

import socket
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Model
from django.utils import timezone

from loupe.learning.models import RunStatus


class RunCancelled(Exception):
    """Raised inside a run when someone asked to cancel it."""


def stale_after() -> timedelta:
    return timedelta(seconds=settings.LOUPE_STALE_AFTER_SECONDS)


def run_claim(model: type[Model], run_id: int) -> Model | None:
    """queued -> running, or take over a running run whose worker stopped beating.
    Returns the claimed run, or None when someone else owns it or it has ended."""
    now = timezone.now()
    owner = f"{socket.gethostname()}"
    fields = {"status": RunStatus.RUNNING, "heartbeat_at": now, "worker": owner}
    claimed = model.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        started_at=now, attempts=F("attempts") + 1, **fields
    )
    if not claimed:
        claimed = model.objects.filter(
            pk=run_id, status=RunStatus.RUNNING, heartbeat_at__lt=now - stale_after()
        ).update(attempts=F("attempts") + 1, **fields)
    return model.objects.get(pk=run_id) if claimed else None


def run_beat(run, *, progress: float | None = None, phase: str | None = None) -> None:
    """Records liveness and progress; raises RunCancelled when a cancel was requested."""
    changes = {"heartbeat_at": timezone.now()}
    if progress is not None:
        run.progress = changes["progress"] = max(0.0, min(1.0, progress))
    if phase is not None:
        run.phase = changes["phase"] = phase
    type(run).objects.filter(pk=run.pk).update(**changes)
    run.heartbeat_at = changes["heartbeat_at"]
    if type(run).objects.filter(pk=run.pk, cancel_requested=True).exists():
        raise RunCancelled()


def run_finish(run, status: str, *, error: str = "", **fields) -> bool:
    """running -> a final status. Returns False when the run had already ended."""
    changes = {"status": status, "error": error[:5000], "finished_at": timezone.now(), **fields}
    if status == RunStatus.SUCCEEDED:
        changes["progress"] = 1.0
    done = (
        type(run)
        .objects.filter(pk=run.pk, status__in=[RunStatus.RUNNING, RunStatus.QUEUED])
        .update(**changes)
    )
    for key, value in changes.items():
        setattr(run, key, value)
    return bool(done)

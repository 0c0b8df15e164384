"""Labeling tasks: push rounds to Label Studio, apply its webhook events, reconcile.

Thin: take ids (or the webhook body), call a service. Every service guards itself (a round
is pushed only while it is a draft, events apply idempotently by annotation id and
updated_at), so acks_late with reject-on-worker-lost is safe."""

import logging

from config.celery import app
from loupe import jobs

logger = logging.getLogger(__name__)

IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}
PUSH_MAX_RETRIES = 8
PUSH_BACKOFF_S = 15
PUSH_BACKOFF_MAX_S = 900


def push_backoff(retries: int) -> int:
    """Seconds before retry number `retries + 1`: 15, 30, 60, ... up to 15 minutes."""
    return min(PUSH_BACKOFF_MAX_S, PUSH_BACKOFF_S * 2**retries)


@app.task(name=jobs.PUSH_ROUND, bind=True, max_retries=PUSH_MAX_RETRIES, **IDEMPOTENT)
def push_round(self, *, selection_round_id: int) -> None:
    from loupe.errors import ApplicationError
    from loupe.labeling.adapter import LabelStudioError, LabelStudioUnavailable
    from loupe.labeling.services import selection_round_push
    from loupe.learning.models import SelectionRound

    selection_round = SelectionRound.objects.filter(pk=selection_round_id).first()
    if selection_round is None:
        return
    try:
        selection_round_push(selection_round=selection_round)
    except LabelStudioUnavailable as exc:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            # The round stays a draft with its error; the periodic resume pushes it later.
            logger.warning("push of round %s left for later: %s", selection_round_id, exc)
            return
        raise self.retry(exc=exc, countdown=push_backoff(self.request.retries)) from exc
    except (LabelStudioError, ApplicationError) as exc:
        # Refused (bad config, no classes...): retrying the same request would not help.
        # The round keeps the error for people to see; the periodic resume tries again.
        logger.error("push of round %s refused: %s", selection_round_id, exc)


@app.task(name=jobs.PUSH_PENDING)
def push_pending() -> None:
    from loupe.labeling.services import rounds_push_pending

    rounds_push_pending()


@app.task(name=jobs.SYNC_PROJECT, bind=True, max_retries=PUSH_MAX_RETRIES, **IDEMPOTENT)
def sync_project(self, *, project_id: int) -> None:
    from loupe.labeling.adapter import LabelStudioUnavailable
    from loupe.labeling.services import project_sync
    from loupe.projects.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    try:
        project_sync(project=project)
    except LabelStudioUnavailable as exc:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            logger.warning("sync of project %s failed: %s", project_id, exc)
            return
        raise self.retry(exc=exc, countdown=push_backoff(self.request.retries)) from exc


@app.task(name=jobs.APPLY_EVENTS, **IDEMPOTENT)
def apply_events(*, payload: dict) -> None:
    from loupe.labeling.services import events_apply

    events_apply(payload=payload)


@app.task(name=jobs.RECONCILE_PROJECT, **IDEMPOTENT)
def reconcile_project(*, project_id: int, full: bool | None = None) -> None:
    from loupe.labeling.adapter import LabelStudioUnavailable
    from loupe.labeling.services import project_reconcile
    from loupe.projects.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    try:
        logger.info(
            "reconciled project %s: %s", project_id, project_reconcile(project=project, full=full)
        )
    except LabelStudioUnavailable as exc:
        # The cursor did not move; the next beat tick pulls the same changes.
        logger.warning("reconciliation of project %s postponed: %s", project_id, exc)


@app.task(name=jobs.RECONCILE_ALL)
def reconcile_all() -> None:
    from loupe.labeling.services import projects_reconcile_all

    projects_reconcile_all()

"""Reconciliation: Label Studio sends each webhook once, with a 1 s timeout and no retry, so
a periodic pull brings every annotation changed since the project's cursor, and a less
frequent full listing finds deletions whose webhook was lost: annotations, and tasks (a
deleted task sends its unlabeled item back to the pool)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.utils import timezone

from loupe import jobs
from loupe.labeling import adapter
from loupe.labeling.events import (
    ApplyResult,
    annotations_apply,
    annotations_delete,
    tasks_delete,
)
from loupe.labeling.ls_payloads import AnnotationRecord
from loupe.labeling.models import Annotation, LabelStudioSync
from loupe.labeling.sync import claim, ls_client, release, sync_state
from loupe.learning.models import SelectionItem
from loupe.projects.models import Project

APPLY_CHUNK = 1000
# Annotations changed this close to a full listing's start may be missing from it without
# being deleted; the next full listing checks them.
FULL_LISTING_MARGIN = timedelta(seconds=60)
DELETE_CHUNK = 500


def _chunks(records: Iterator[AnnotationRecord], size: int) -> Iterator[list[AnnotationRecord]]:
    while chunk := list(islice(records, size)):
        yield chunk


def _full_due(state: LabelStudioSync) -> bool:
    minutes = getattr(settings, "LOUPE_LABELING_FULL_SYNC_MINUTES", 60)
    return state.last_full_sync_at is None or state.last_full_sync_at < timezone.now() - timedelta(
        minutes=minutes
    )


def project_reconcile(*, project: Project, full: bool | None = None, client=None) -> dict:
    """Pulls every annotation changed in Label Studio since the project's cursor.

    `full` (default: when the last full listing is older than
    LOUPE_LABELING_FULL_SYNC_MINUTES) lists everything and also drops annotations Label
    Studio no longer has. Another reconciliation of the project running makes this a no-op.
    Raises LabelStudioUnavailable when the server cannot be reached (the cursor stays).
    """
    if not project.ls_project_id:
        return {"skipped": "not linked to Label Studio"}
    if not claim(project=project, kind="reconcile"):
        return {"skipped": "another reconciliation runs"}
    try:
        state = sync_state(project=project)
        full = _full_due(state) if full is None else full
        started = timezone.now()
        cursor = state.last_synced_at
        since = None if full else state.last_synced_at
        total, seen, tasks_gone = ApplyResult(), set(), 0
        try:
            client = client or ls_client()
            records = adapter.annotations_since(client, project.ls_project_id, since)
            for chunk in _chunks(iter(records), APPLY_CHUNK):
                seen.update(r.id for r in chunk)
                stamps = [r.updated_at for r in chunk if r.updated_at]
                cursor = max([cursor, *stamps] if cursor else stamps, default=cursor)
                total.add(annotations_apply(project=project, records=chunk))
            tasks = adapter.task_ids(client, project.ls_project_id) if full else None
        except adapter.LabelStudioError as exc:
            LabelStudioSync.objects.filter(pk=state.pk).update(
                last_error=str(exc)[:2000], last_run_at=started
            )
            raise
        if full:
            local = Annotation.objects.filter(
                project=project,
                ls_annotation_id__isnull=False,
                ls_updated_at__lt=started - FULL_LISTING_MARGIN,
            ).values_list("ls_annotation_id", flat=True)
            missing = sorted(set(local) - seen)
            for start in range(0, len(missing), DELETE_CHUNK):
                chunk = missing[start : start + DELETE_CHUNK]
                total.add(annotations_delete(project=project, ids=chunk, at=started))
            # Tasks deleted in Label Studio (an empty one leaves no annotation to miss): their
            # unlabeled items go back to the pool.
            pushed = SelectionItem.objects.filter(
                selection_round__project=project,
                selection_round__pushed_at__lt=started - FULL_LISTING_MARGIN,
                ls_task_id__isnull=False,
            ).values_list("ls_task_id", flat=True)
            gone = sorted(set(pushed) - tasks)
            for start in range(0, len(gone), DELETE_CHUNK):
                chunk = gone[start : start + DELETE_CHUNK]
                total.add(tasks_delete(project=project, task_ids=chunk, at=started))
            tasks_gone = len(gone)
        changes = {"last_synced_at": cursor, "last_run_at": started, "last_error": ""}
        if full:
            changes["last_full_sync_at"] = started
        LabelStudioSync.objects.filter(pk=state.pk).update(**changes)
        return {
            "full": full,
            "listed": len(seen),
            "applied": total.applied,
            "ignored": total.ignored,
            "deleted": total.deleted,
            "tasks_deleted": tasks_gone,
            "new_labels": total.new_labels,
        }
    finally:
        release(project=project, kind="reconcile")


def projects_reconcile_all() -> list[int]:
    """Queues a reconciliation of every project linked to Label Studio (beat runs this)."""
    ids = list(Project.objects.filter(ls_project_id__isnull=False).values_list("pk", flat=True))
    for project_id in ids:
        jobs.enqueue(jobs.RECONCILE_PROJECT, project_id=project_id)
    return ids

"""Label Studio -> Loupe: webhook events (and reconciliation's listings) become annotations,
ground truth and item states.

Every change is applied idempotently by (Label Studio annotation id, updated_at): an event
seen twice, or an older one after a newer one, changes nothing. Deletions leave tombstones
so a late event about a deleted annotation or task does not bring it back.

Time stamps come from Label Studio, so they are held to the time Loupe received them: one
further ahead than MAX_CLOCK_SKEW is taken as the receive time, and never brings a deleted
annotation back. A forged or broken far-future `updated_at` would otherwise win over every
later genuine change.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from loupe import jobs
from loupe.datasets.models import Item, ItemState
from loupe.errors import ApplicationError
from loupe.labeling import adapter, review
from loupe.labeling.consensus import ground_truth_recompute
from loupe.labeling.ls_payloads import (
    WEBHOOK_ACTIONS,
    AnnotationRecord,
    MalformedWebhook,
    WebhookEvent,
)
from loupe.labeling.models import Annotation, LabelStudioDeletion
from loupe.labeling.people import people_by_ls_id
from loupe.labeling.sync import ls_client
from loupe.learning.models import SelectionItem, SelectionRound
from loupe.projects.models import LabelClass, Project
from loupe.tasktypes import task_type_of

logger = logging.getLogger(__name__)

_EMAILS_TTL_S = 300
_EPOCH = datetime.min.replace(tzinfo=UTC)
# How far Label Studio's clock may run ahead of Loupe's before a time stamp is not believed.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Label Studio's ids are 64-bit database keys; anything else cannot be stored.
_MAX_ID = 2**63 - 1
_emails_cache: dict = {"at": 0.0, "emails": {}}


@dataclass
class ApplyResult:
    applied: int = 0
    ignored: int = 0
    deleted: int = 0
    new_labels: int = 0

    def add(self, other: ApplyResult) -> None:
        self.applied += other.applied
        self.ignored += other.ignored
        self.deleted += other.deleted
        self.new_labels += other.new_labels


# --- webhook ----------------------------------------------------------------------------------


def _trimmed(payload: dict, *, received_at: datetime) -> dict:
    """The webhook body without the full project object and task fields Loupe does not read,
    with the time Loupe received it."""

    def task(value):
        if isinstance(value, list):
            return [task(v) for v in value]
        if isinstance(value, dict):
            return {"id": value.get("id"), "data": value.get("data") or {}}
        return None

    out = {
        "action": payload["action"],
        "project": {"id": payload["project"]["id"]},
        "received_at": received_at.isoformat(),
    }
    for key in ("annotation", "annotations", "tasks"):
        if key in payload:
            out[key] = payload[key]
    if "task" in payload:
        out["task"] = task(payload["task"])
    return out


def _event(payload) -> WebhookEvent:
    """The event of a webhook body; MalformedWebhook when it is not one Loupe can store.

    Parsing is pure (JSON in, dataclasses out): whatever a body makes it fail on (a number
    where a list belongs, an id of 400 digits) is the body's fault, never a server error.
    """
    try:
        event = adapter.parse_webhook(payload)
    except MalformedWebhook:  # a ValueError too: passed on as it is
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise MalformedWebhook(f"unexpected value in the body ({exc})") from exc
    ids = [*event.deleted_annotation_ids, *event.deleted_task_ids]
    for record in event.annotations:
        ids += [record.id, record.task_id]
        ids += [v for v in (record.item_id, record.round_id, record.completed_by) if v is not None]
        lead_time = record.lead_time
        if lead_time is not None and (
            isinstance(lead_time, bool)
            or not isinstance(lead_time, int | float)
            or not math.isfinite(lead_time)
        ):
            raise MalformedWebhook(f"annotation {record.id}: lead_time is not a number")
        if not all(isinstance(name, str) for name in record.classes):
            raise MalformedWebhook(f"annotation {record.id}: a chosen class is not a name")
    if any(not 0 < ls_id <= _MAX_ID for ls_id in ids):
        raise MalformedWebhook("an id is not a positive 64-bit integer")
    return event


def webhook_receive(*, payload) -> str:
    """Checks a webhook body and hands it to a worker; returns "queued" or "ignored".

    A body that is not a Label Studio event raises ApplicationError (400). Events of a
    project Loupe does not know, or actions it does not use, are logged and ignored.
    """
    received_at = timezone.now()
    try:
        event = _event(payload)
    except MalformedWebhook as exc:
        raise ApplicationError(f"Not a Label Studio webhook: {exc}", code="malformed") from exc
    if event.action not in WEBHOOK_ACTIONS:
        logger.info("webhook %s ignored: not an action Loupe uses", event.action)
        return "ignored"
    if (
        event.project_id is None
        or not Project.objects.filter(ls_project_id=event.project_id).exists()
    ):
        logger.warning("webhook %s ignored: unknown project %s", event.action, event.project_id)
        return "ignored"
    jobs.enqueue(jobs.APPLY_EVENTS, payload=_trimmed(payload, received_at=received_at))
    return "queued"


def _received_at(payload: dict) -> datetime:
    """When the web server received this body (now, for a body queued without it)."""
    now = timezone.now()
    try:
        received_at = datetime.fromisoformat(payload["received_at"])
    except (KeyError, TypeError, ValueError):
        return now
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    return min(received_at, now)


def events_apply(*, payload: dict) -> ApplyResult:
    """Applies one webhook body (what `webhook_receive` queued). Safe to run twice."""
    try:
        event = _event(payload)
    except MalformedWebhook:
        logger.exception("dropping a malformed webhook body")
        return ApplyResult(ignored=1)
    project = (
        Project.objects.filter(ls_project_id=event.project_id).first()
        if event.project_id is not None
        else None
    )
    if project is None:
        logger.warning("event %s ignored: unknown project %s", event.action, event.project_id)
        return ApplyResult(ignored=1)
    result = ApplyResult()
    received_at = _received_at(payload)
    if event.annotations:
        result.add(
            annotations_apply(project=project, records=event.annotations, received_at=received_at)
        )
    if event.deleted_annotation_ids:
        result.add(
            annotations_delete(project=project, ids=event.deleted_annotation_ids, at=received_at)
        )
    if event.deleted_task_ids:
        result.add(tasks_delete(project=project, task_ids=event.deleted_task_ids, at=received_at))
    return result


# --- applying annotations ---------------------------------------------------------------------


def _user_emails() -> dict[int, str]:
    # Webhook bodies name annotators by Label Studio user id only; one listing per few
    # minutes turns ids into emails. When Label Studio is down, ids stand in until
    # reconciliation brings the emails.
    if time.monotonic() - _emails_cache["at"] > _EMAILS_TTL_S:
        try:
            _emails_cache["emails"] = adapter.user_emails(ls_client())
            _emails_cache["at"] = time.monotonic()
        except adapter.LabelStudioError:
            # Ask again in half a minute, not on every event while the server is away.
            _emails_cache["at"] = time.monotonic() - _EMAILS_TTL_S + 30
    return _emails_cache["emails"]


def _annotator(record: AnnotationRecord, current: str, emails: dict[int, str]) -> str:
    if record.completed_by_email:
        return record.completed_by_email
    if current and not current.startswith("ls-user-"):
        return current
    if record.completed_by is None:
        return current
    return emails.get(record.completed_by) or f"ls-user-{record.completed_by}"


def _attribution(
    record: AnnotationRecord,
    current: Annotation | None,
    people: dict[int, tuple[int, str]],
    emails: dict[int, str],
) -> tuple[int | None, str]:
    """(Loupe user id or None, annotator name) of an answer: the Loupe user whose Label
    Studio user gave it; else the Label Studio email (or id) it came with."""
    person = people.get(record.completed_by) if record.completed_by is not None else None
    if person is not None:
        return person
    if current is not None and current.user_id is not None:
        return current.user_id, current.annotator
    return None, _annotator(record, current.annotator if current else "", emails)


def _stamp(record: AnnotationRecord) -> datetime | None:
    return record.updated_at or record.created_at


def _aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _believable(stamp: datetime | None, *, received_at: datetime) -> datetime | None:
    """`stamp` (naive ones read as UTC), or `received_at` when `stamp` lies further ahead of
    it than MAX_CLOCK_SKEW."""
    if stamp is None:
        return None
    stamp = _aware(stamp)
    return received_at if stamp > received_at + MAX_CLOCK_SKEW else stamp


def _on_receive_clock(
    record: AnnotationRecord, received_at: datetime
) -> tuple[AnnotationRecord, bool]:
    """The record with its time stamps held to `received_at`; True when one was ahead."""
    stamps = (record.created_at, record.updated_at)
    ahead = any(s is not None and _aware(s) > received_at + MAX_CLOCK_SKEW for s in stamps)
    if ahead:
        logger.warning(
            "annotation %s: time stamp %s is ahead of its arrival (%s); taken as the arrival",
            record.id,
            _stamp(record),
            received_at,
        )
    held = dataclasses.replace(
        record,
        created_at=_believable(record.created_at, received_at=received_at),
        updated_at=_believable(record.updated_at, received_at=received_at),
    )
    return held, ahead


def annotations_apply(
    *,
    project: Project,
    records: Iterable[AnnotationRecord],
    received_at: datetime | None = None,
) -> ApplyResult:
    """Creates or updates Loupe's copy of these annotations, then recomputes ground truth.

    A record older than (or as old as) the copy Loupe holds, or than a tombstone of its
    annotation or task, is ignored; so is one whose item is not in the project (logged).
    `received_at` is when Loupe got the records (the webhook's arrival; now by default): a
    time stamp further ahead of it than MAX_CLOCK_SKEW counts as `received_at` and never
    outweighs a tombstone.
    """
    received_at = received_at or timezone.now()
    latest: dict[int, AnnotationRecord] = {}
    ahead: dict[int, bool] = {}
    for record in records:
        record, was_ahead = _on_receive_clock(record, received_at)
        known = latest.get(record.id)
        if known is None or (_stamp(record) or _EPOCH) > (_stamp(known) or _EPOCH):
            latest[record.id] = record
            ahead[record.id] = was_ahead
    if not latest:
        return ApplyResult()
    untrusted = {ls_id for ls_id, was_ahead in ahead.items() if was_ahead}
    for attempt in range(2):
        try:
            return _apply(project, list(latest.values()), untrusted)
        except IntegrityError:
            # Another worker created one of these annotations at the same moment; the
            # second pass finds its row and compares timestamps.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _apply(project: Project, records: list[AnnotationRecord], untrusted: set[int]) -> ApplyResult:
    result = ApplyResult()
    by_task = dict(
        SelectionItem.objects.filter(
            selection_round__project=project, ls_task_id__in={r.task_id for r in records}
        ).values_list("ls_task_id", "item_id")
    )
    wanted_items = {r.item_id or by_task.get(r.task_id) for r in records} - {None}
    project_items = set(
        Item.objects.filter(project=project, pk__in=wanted_items).values_list("pk", flat=True)
    )
    classes = dict(LabelClass.objects.filter(project=project).values_list("name", "pk"))
    kind = task_type_of(project)
    tombstones = {
        (kind, ls_id): at
        for kind, ls_id, at in LabelStudioDeletion.objects.filter(
            ls_id__in={r.id for r in records} | {r.task_id for r in records}
        ).values_list("kind", "ls_id", "deleted_at")
    }
    existing = Annotation.objects.in_bulk([r.id for r in records], field_name="ls_annotation_id")
    people = people_by_ls_id(r.completed_by for r in records if r.completed_by is not None)
    unnamed = any(not r.completed_by_email and r.completed_by not in people for r in records)
    emails = _user_emails() if unnamed else {}
    create, update, touched = [], [], set()
    for record in records:
        item_id = record.item_id or by_task.get(record.task_id)
        stamp = _stamp(record)
        if item_id not in project_items:
            logger.warning(
                "annotation %s ignored: task %s is not an item of project %s",
                record.id,
                record.task_id,
                project.slug,
            )
            result.ignored += 1
            continue
        deleted_at = max(
            [
                at
                for at in (
                    tombstones.get((LabelStudioDeletion.Kind.ANNOTATION, record.id)),
                    tombstones.get((LabelStudioDeletion.Kind.TASK, record.task_id)),
                )
                if at is not None
            ],
            default=None,
        )
        if deleted_at is not None and (
            stamp is None or stamp <= deleted_at or record.id in untrusted
        ):
            result.ignored += 1
            continue
        current = existing.get(record.id)
        held = current.ls_updated_at if current is not None else None
        if current is not None and current.updated_at is not None:
            # A stamp stored before times were held to their arrival may lie in the
            # future: it counts as when the row was written.
            held = _believable(held, received_at=current.updated_at)
        user_id, annotator = _attribution(record, current, people, emails)
        fields = {
            "item_id": item_id,
            "project_id": project.pk,
            "label_class_id": kind.answer_class(record.result, classes),
            "answer": kind.answer_value(record.result),
            "annotator": annotator,
            "user_id": user_id,
            "result": record.result,
            "lead_time_seconds": record.lead_time,
            "was_cancelled": record.was_cancelled,
            "ls_task_id": record.task_id,
            "ls_updated_at": stamp,
        }
        if current is None:
            create.append(Annotation(ls_annotation_id=record.id, **fields))
        elif held and stamp and stamp <= held:
            if (current.annotator, current.user_id) != (annotator, user_id):
                # only who answered, learnt later
                current.annotator, current.user_id = annotator, user_id
                update.append(current)
            result.ignored += 1
            continue
        else:
            touched.add(current.item_id)
            for key, value in fields.items():
                setattr(current, key, value)
            update.append(current)
        touched.add(item_id)
        result.applied += 1
    with transaction.atomic():
        Annotation.objects.bulk_create(create, batch_size=500)
        now = timezone.now()
        for annotation in update:
            annotation.updated_at = now
        Annotation.objects.bulk_update(
            update,
            [
                "item",
                "project",
                "label_class",
                "answer",
                "annotator",
                "user",
                "result",
                "lead_time_seconds",
                "was_cancelled",
                "ls_task_id",
                "ls_updated_at",
                "updated_at",
            ],
            batch_size=500,
        )
        result.new_labels = _settle(project, touched)
    return result


def _settle(project: Project, item_ids: set[int], returned: Iterable[int] = ()) -> int:
    """Ground truth, rounds and the retraining trigger after annotations changed."""
    new_labels = ground_truth_recompute(project=project, item_ids=item_ids, returned=returned)
    completed = _rounds_complete(item_ids)
    # A batch that ends with a skip (or "can't tell") brings no label but ends the experts'
    # work: the loop hears of it too. It decides whether to retrain, once this commits.
    if new_labels or completed:
        jobs.enqueue(jobs.LABELS_CHANGED, project_id=project.pk)
    return new_labels


def _rounds_complete(item_ids: set[int]) -> int:
    """Marks complete the pushed rounds of these items that have no open item left;
    returns how many."""
    completed = 0
    rounds = SelectionRound.objects.filter(
        status=SelectionRound.Status.PUSHED, items__item_id__in=item_ids
    ).distinct()
    for selection_round in rounds:
        if selection_round.strategy == review.LABEL_REVIEW:
            # Its items stay labeled while reviewed: it is done once every task is answered.
            if not review.review_round_open(selection_round):
                SelectionRound.objects.filter(pk=selection_round.pk).update(
                    status=SelectionRound.Status.COMPLETE
                )
            continue
        open_items = Item.objects.filter(
            selections__selection_round=selection_round,
            state__in=[ItemState.QUEUED, ItemState.IN_ANNOTATION],
        )
        if not open_items.exists():
            completed += SelectionRound.objects.filter(
                pk=selection_round.pk, status=SelectionRound.Status.PUSHED
            ).update(status=SelectionRound.Status.COMPLETE)
    return completed


def _tombstone(kind: str, times: dict[int, datetime]) -> None:
    """Records deletions; each time is the newest of the deletion and any stamp Loupe held,
    so a replayed event is older than its tombstone even when the clocks of Loupe and
    Label Studio differ."""
    known = {
        t.ls_id: t for t in LabelStudioDeletion.objects.filter(kind=kind, ls_id__in=list(times))
    }
    LabelStudioDeletion.objects.bulk_create(
        [
            LabelStudioDeletion(kind=kind, ls_id=i, deleted_at=at)
            for i, at in times.items()
            if i not in known
        ],
        batch_size=500,
    )
    later = []
    for ls_id, tombstone in known.items():
        if tombstone.deleted_at < times[ls_id]:
            tombstone.deleted_at = times[ls_id]
            later.append(tombstone)
    LabelStudioDeletion.objects.bulk_update(later, ["deleted_at"], batch_size=500)


def _deletion_times(ids: Iterable[int], at: datetime, stamps: Iterable) -> dict[int, datetime]:
    times = dict.fromkeys(ids, at)
    for ls_id, stamp in stamps:
        stamp = _believable(stamp, received_at=at)
        if stamp is not None and stamp > times.get(ls_id, at):
            times[ls_id] = stamp
    return times


@transaction.atomic
def annotations_delete(*, project: Project, ids: Iterable[int], at: datetime) -> ApplyResult:
    """Drops these Label Studio annotations from Loupe (deleted there at `at`)."""
    ids = list(ids)
    gone = Annotation.objects.filter(project=project, ls_annotation_id__in=ids)
    rows = list(gone.values_list("ls_annotation_id", "ls_updated_at", "item_id"))
    times = _deletion_times(ids, at, (row[:2] for row in rows))
    _tombstone(LabelStudioDeletion.Kind.ANNOTATION, times)
    items = {row[2] for row in rows}
    deleted, _ = gone.delete()
    return ApplyResult(deleted=deleted, new_labels=_settle(project, items))


@transaction.atomic
def tasks_delete(*, project: Project, task_ids: Iterable[int], at: datetime) -> ApplyResult:
    """Drops the annotations of deleted Label Studio tasks; their unlabeled items go back to
    the pool, and the picks forget the task."""
    task_ids = list(task_ids)
    gone = Annotation.objects.filter(project=project, ls_task_id__in=task_ids)
    rows = list(gone.values_list("ls_task_id", "ls_updated_at", "item_id"))
    times = _deletion_times(task_ids, at, (row[:2] for row in rows))
    _tombstone(LabelStudioDeletion.Kind.TASK, times)
    picks = SelectionItem.objects.filter(selection_round__project=project, ls_task_id__in=task_ids)
    returned = set(picks.values_list("item_id", flat=True))
    items = {row[2] for row in rows} | returned
    deleted, _ = gone.delete()
    picks.update(ls_task_id=None)
    return ApplyResult(deleted=deleted, new_labels=_settle(project, items, returned))

"""Applying Label Studio events: idempotent, order-independent, deletions, ground truth."""

import json
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest
from django.utils import timezone

from loupe.datasets.models import Item, ItemState, Split
from loupe.labeling.events import events_apply, webhook_receive
from loupe.labeling.models import Annotation, Decision, GroundTruth
from loupe.labeling.services import ground_truth_review
from loupe.learning.models import SelectionItem, SelectionRound
from tests.platform.labeling.builders import (
    annotation_body,
    items_with_files,
    labeling_project,
    selection_round,
    webhook,
)

pytestmark = pytest.mark.django_db

LS_PROJECT = 7


@pytest.fixture
def triggers(monkeypatch):
    """Calls of the retraining trigger (the loop itself is tested by the learning app)."""
    calls = []
    monkeypatch.setattr(
        "loupe.learning.loop.loop_trigger_on_labels", lambda *, project: calls.append(project)
    )
    return calls


@pytest.fixture
def apply(django_capture_on_commit_callbacks):
    """events_apply, with what it runs after commit (the retraining trigger)."""

    def run(payload):
        with django_capture_on_commit_callbacks(execute=True):
            return events_apply(payload=payload)

    return run


def pushed(project, n, first_task=100):
    items = items_with_files(project, n)
    selection = selection_round(project, items)
    for offset, pick in enumerate(selection.items.order_by("rank")):
        pick.ls_task_id = first_task + offset
        pick.save()
    SelectionRound.objects.filter(pk=selection.pk).update(status=SelectionRound.Status.PUSHED)
    Item.objects.filter(pk__in=[i.pk for i in items]).update(state=ItemState.IN_ANNOTATION)
    return items, selection


def created(annotation_id, item, task_id, **kwargs):
    annotation, task = annotation_body(annotation_id, task_id=task_id, item_id=item.pk, **kwargs)
    return webhook("ANNOTATION_CREATED", LS_PROJECT, annotation=annotation, task=task)


def updated(annotation_id, item, task_id, **kwargs):
    body = created(annotation_id, item, task_id, **kwargs)
    return {**body, "action": "ANNOTATION_UPDATED"}


def state_of(project):
    truths = {
        g.item_id: (g.label_class.name, g.decided_by, g.needs_review)
        for g in GroundTruth.objects.filter(item__project=project)
    }
    items = {i.pk: (i.state, i.split) for i in Item.objects.filter(project=project)}
    annotations = sorted(
        Annotation.objects.filter(item__project=project).values_list(
            "ls_annotation_id", "label_class__name", "was_cancelled"
        )
    )
    return truths, items, annotations


def test_an_annotation_becomes_ground_truth_and_moves_the_item_to_train(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (item, other), selection = pushed(project, 2)

    apply(created(1, item, 100, choice="dog", user=3))

    truth = GroundTruth.objects.get(item=item)
    assert (truth.label_class.name, truth.decided_by, truth.agreement) == (
        "dog",
        Decision.SINGLE,
        1.0,
    )
    item.refresh_from_db()
    assert (item.state, item.split) == (ItemState.LABELED, Split.TRAIN)
    annotation = Annotation.objects.get(ls_annotation_id=1)
    assert (annotation.ls_task_id, annotation.lead_time_seconds) == (100, 3.5)
    # Label Studio could not be asked for emails: the user id stands in.
    assert annotation.annotator == "ls-user-3"
    assert triggers == [project]
    selection.refresh_from_db()
    assert selection.status == SelectionRound.Status.PUSHED  # the other item is still open

    apply(created(2, other, 101, choice="cat"))
    selection.refresh_from_db()
    assert selection.status == SelectionRound.Status.COMPLETE


def test_applying_twice_or_out_of_order_gives_the_same_state(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT, overlap=2)
    (item,), _ = pushed(project, 1)
    bodies = [
        created(1, item, 100, choice="cat", updated=1, user=1),
        updated(1, item, 100, choice="dog", updated=5, user=1),
        created(2, item, 100, choice="dog", updated=3, user=2),
        updated(2, item, 100, choice="dog", updated=3, user=2),  # a replay
    ]
    outcomes = set()
    for order in permutations(bodies):
        Annotation.objects.all().delete()
        GroundTruth.objects.all().delete()
        Item.objects.filter(pk=item.pk).update(state=ItemState.IN_ANNOTATION, split=Split.POOL)
        for body in order:
            apply(body)
        apply(order[0])
        outcomes.add(repr(state_of(project)))
    assert len(outcomes) == 1
    truths, items, _ = state_of(project)
    assert truths[item.pk] == ("dog", Decision.MAJORITY, False)
    assert items[item.pk] == (ItemState.LABELED, Split.TRAIN)


def test_a_deleted_annotation_stays_deleted_when_an_old_event_arrives_late(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (item,), _ = pushed(project, 1)
    create = created(1, item, 100, choice="cat", updated=2)
    apply(create)
    assert GroundTruth.objects.filter(item=item).exists()

    apply(webhook("ANNOTATIONS_DELETED", LS_PROJECT, annotations=[{"id": 1}]))
    apply(create)  # delivered late, or replayed by reconciliation

    assert not Annotation.objects.filter(item=item).exists()
    assert not GroundTruth.objects.filter(item=item).exists()
    item.refresh_from_db()
    assert (item.state, item.split) == (ItemState.IN_ANNOTATION, Split.POOL)


def test_deleted_tasks_drop_their_annotations_and_return_items_to_the_pool(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (kept, dropped), selection = pushed(project, 2)
    apply(created(1, kept, 100, choice="cat"))
    apply(created(2, dropped, 101, choice="dog"))

    apply(webhook("TASKS_DELETED", LS_PROJECT, tasks=[{"id": 101}]))

    assert list(Annotation.objects.values_list("ls_annotation_id", flat=True)) == [1]
    dropped.refresh_from_db()
    assert (dropped.state, dropped.split) == (ItemState.UNLABELED, Split.POOL)
    assert not GroundTruth.objects.filter(item=dropped).exists()
    assert SelectionItem.objects.get(item=dropped).ls_task_id is None
    apply(created(2, dropped, 101, choice="dog"))  # a late replay
    assert not GroundTruth.objects.filter(item=dropped).exists()


def test_skips_mark_the_item_skipped_and_count_toward_overlap(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT, overlap=2)
    (item,), _ = pushed(project, 1)
    apply(created(1, item, 100, cancelled=True, user=1))
    item.refresh_from_db()
    assert item.state == ItemState.IN_ANNOTATION
    assert triggers == []  # no label, and the batch is still open
    apply(created(2, item, 100, cancelled=True, user=2))
    item.refresh_from_db()
    assert item.state == ItemState.SKIPPED and not GroundTruth.objects.exists()
    # The skip ended the batch: the loop hears of it (and starts the next one when the
    # batch brought new labels), rather than waiting for the minute's beat.
    assert triggers == [project]


def test_a_tie_waits_for_review_and_the_review_decides(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT, overlap=2)
    (item,), _ = pushed(project, 1)
    apply(created(1, item, 100, choice="cat", user=1))
    apply(created(2, item, 100, choice="dog", user=2))

    truth = GroundTruth.objects.get(item=item)
    assert truth.needs_review and truth.agreement == 0.5
    item.refresh_from_db()
    assert (item.state, item.split) == (ItemState.IN_ANNOTATION, Split.POOL)
    assert triggers == []

    ground_truth_review(item=item, label_class_name="dog")
    # A later vote does not overturn a review.
    apply(updated(1, item, 100, choice="cat", updated=9, user=1))
    truth.refresh_from_db()
    item.refresh_from_db()
    assert (truth.label_class.name, truth.decided_by, truth.needs_review) == (
        "dog",
        Decision.REVIEW,
        False,
    )
    assert (item.state, item.split) == (ItemState.LABELED, Split.TRAIN)


def test_unknown_tasks_and_projects_are_ignored(apply, triggers, caplog):
    project = labeling_project(ls_project_id=LS_PROJECT)
    other = labeling_project(ls_project_id=99)
    (stranger,) = items_with_files(other, 1, seed=50)

    result = apply(created(1, stranger, 555))
    assert result.ignored == 1 and not Annotation.objects.exists()
    assert "not an item of project" in caplog.text

    body = created(2, stranger, 556)
    body["project"]["id"] = 12345
    assert apply(body).ignored == 1
    assert not Annotation.objects.exists()
    assert GroundTruth.objects.filter(item__project=project).count() == 0


def test_an_item_is_found_by_its_task_when_the_body_lacks_task_data(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (item,), _ = pushed(project, 1)
    annotation, _ = annotation_body(1, task_id=100, item_id=item.pk, choice="dog")
    apply(webhook("ANNOTATIONS_CREATED", LS_PROJECT, annotation=[annotation]))
    assert GroundTruth.objects.get(item=item).label_class.name == "dog"


# --- time stamps held to their arrival -----------------------------------------------------


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def stamped(body, moment):
    """`body` with its annotation updated at `moment` (Label Studio's clock)."""
    annotation = {**body["annotation"], "updated_at": iso(moment)}
    return {**body, "annotation": annotation}


FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


def test_a_far_future_stamp_does_not_bring_a_deleted_annotation_back(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (item,), _ = pushed(project, 1)
    apply(created(1, item, 100, choice="cat", updated=2))
    apply(webhook("ANNOTATIONS_DELETED", LS_PROJECT, annotations=[{"id": 1}]))

    result = apply(stamped(updated(1, item, 100, choice="dog"), FAR_FUTURE))

    assert result.ignored == 1
    assert not Annotation.objects.exists() and not GroundTruth.objects.exists()
    item.refresh_from_db()
    assert (item.state, item.split) == (ItemState.IN_ANNOTATION, Split.POOL)


def test_a_far_future_stamp_counts_as_its_arrival_and_later_updates_win(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (item,), _ = pushed(project, 1)
    apply(created(1, item, 100, choice="cat", updated=2))

    apply(stamped(updated(1, item, 100, choice="dog"), FAR_FUTURE))
    annotation = Annotation.objects.get(ls_annotation_id=1)
    assert annotation.label_class.name == "dog"
    assert annotation.ls_updated_at <= timezone.now()

    # A genuine update a minute later (Label Studio's clock a little ahead is believed).
    later = timezone.now() + timedelta(minutes=1)
    apply(stamped(updated(1, item, 100, choice="cat"), later))

    annotation.refresh_from_db()
    assert (annotation.label_class.name, annotation.ls_updated_at) == ("cat", later)
    assert GroundTruth.objects.get(item=item).label_class.name == "cat"


def test_a_far_future_stamp_stored_earlier_does_not_block_genuine_updates(apply, triggers):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (item,), _ = pushed(project, 1)
    apply(created(1, item, 100, choice="dog", updated=2))
    Annotation.objects.filter(ls_annotation_id=1).update(ls_updated_at=FAR_FUTURE)

    apply(stamped(updated(1, item, 100, choice="cat"), timezone.now()))

    assert Annotation.objects.get(ls_annotation_id=1).label_class.name == "cat"
    # Its deletion is not dated in the far future either: a later annotation that reuses
    # the id is accepted.
    apply(webhook("ANNOTATIONS_DELETED", LS_PROJECT, annotations=[{"id": 1}]))
    reused = timezone.now() + timedelta(seconds=1)
    apply(stamped(created(1, item, 100, choice="dog"), reused))
    assert Annotation.objects.get(ls_annotation_id=1).label_class.name == "dog"


def test_the_arrival_of_a_queued_webhook_is_the_limit_not_when_a_worker_applies_it(
    triggers, django_capture_on_commit_callbacks, monkeypatch
):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (item,), _ = pushed(project, 1)
    queued = []
    monkeypatch.setattr(
        "loupe.labeling.events.jobs.enqueue",
        lambda name, **kwargs: queued.append(kwargs["payload"]) if "payload" in kwargs else None,
    )
    arrival = timezone.now()
    # Ten minutes ahead of its arrival: more than Label Studio's clock may be off.
    body = stamped(created(1, item, 100, choice="dog"), arrival + timedelta(minutes=10))
    assert webhook_receive(payload=body) == "queued"

    # The worker applies it later, when the stamp would no longer lie in the future.
    monkeypatch.setattr(
        "loupe.labeling.events.timezone.now", lambda: arrival + timedelta(minutes=30)
    )
    with django_capture_on_commit_callbacks(execute=True):
        events_apply(payload=queued[0])

    assert Annotation.objects.get(ls_annotation_id=1).ls_updated_at <= arrival + timedelta(
        seconds=5
    )


# --- webhook bodies that are not events ----------------------------------------------------


def _annotation(**fields):
    base = {"id": 1, "task": 100, "result": [], "updated_at": "2026-01-05T09:00:00Z"}
    return {**base, **fields}


@pytest.mark.parametrize(
    "body",
    [
        [],
        "ANNOTATION_CREATED",
        None,
        5,
        {"action": None},
        {"action": "ANNOTATION_CREATED", "project": {"id": LS_PROJECT}, "annotation": None},
        {"action": "ANNOTATION_CREATED", "project": {"id": LS_PROJECT}, "annotation": [None]},
        {"action": "TASKS_DELETED", "project": {"id": LS_PROJECT}, "tasks": [{"id": None}]},
        {"action": "TASKS_DELETED", "project": {"id": LS_PROJECT}, "tasks": [{"id": 10**30}]},
        {
            "action": "ANNOTATIONS_DELETED",
            "project": {"id": LS_PROJECT},
            "annotations": [{"id": -4}],
        },
        # A task field of the wrong shape.
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": LS_PROJECT},
            "annotation": _annotation(),
            "task": {"id": 100, "data": 5},
        },
        # Values inside the annotation Loupe could not store.
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": LS_PROJECT},
            "annotation": _annotation(id=10**30),
        },
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": LS_PROJECT},
            "annotation": _annotation(lead_time="slow"),
        },
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": LS_PROJECT},
            "annotation": _annotation(completed_by=10**40),
        },
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": LS_PROJECT},
            "annotation": _annotation(result=[{"from_name": "label", "value": {"choices": 5}}]),
        },
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": LS_PROJECT},
            "annotation": _annotation(
                result=[{"from_name": "label", "value": {"choices": [{"a": None}]}}]
            ),
        },
        {
            "action": "ANNOTATION_CREATED",
            "project": {"id": LS_PROJECT},
            "annotation": _annotation(updated_at={"a": None}),
        },
    ],
)
def test_a_webhook_body_that_is_not_an_event_is_a_400_and_changes_nothing(
    api_client, settings, triggers, django_capture_on_commit_callbacks, body
):
    settings.LABEL_STUDIO_WEBHOOK_SECRET = "the-secret"
    project = labeling_project(ls_project_id=LS_PROJECT)
    pushed(project, 1)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/labeling/webhook/",
            json.dumps(body),
            content_type="application/json",
            HTTP_X_LOUPE_WEBHOOK_SECRET="the-secret",
        )

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "malformed" and error["message"].startswith("Not a Label Studio")
    assert not Annotation.objects.exists() and not GroundTruth.objects.exists()


def test_a_queued_body_a_worker_cannot_store_is_dropped_not_retried(apply, triggers, caplog):
    project = labeling_project(ls_project_id=LS_PROJECT)
    (item,), _ = pushed(project, 1)
    body = created(1, item, 100)
    body["annotation"]["lead_time"] = "slow"

    assert apply(body).ignored == 1
    assert "malformed" in caplog.text and not Annotation.objects.exists()


def test_a_stray_field_of_the_wrong_shape_in_a_deletion_is_ignored(
    api_client, settings, triggers, django_capture_on_commit_callbacks
):
    settings.LABEL_STUDIO_WEBHOOK_SECRET = "the-secret"
    project = labeling_project(ls_project_id=LS_PROJECT)
    (_, dropped), _ = pushed(project, 2)
    body = webhook("TASKS_DELETED", LS_PROJECT, tasks=[{"id": 101}], task="x")

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/labeling/webhook/",
            body,
            format="json",
            HTTP_X_LOUPE_WEBHOOK_SECRET="the-secret",
        )

    assert response.status_code == 200 and response.json() == {"status": "queued"}
    assert SelectionItem.objects.get(item=dropped).ls_task_id is None

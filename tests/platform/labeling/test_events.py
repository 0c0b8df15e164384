"""Applying Label Studio events: idempotent, order-independent, deletions, ground truth."""

from itertools import permutations

import pytest

from loupe.datasets.models import Item, ItemState, Split
from loupe.labeling.events import events_apply
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
    apply(created(2, item, 100, cancelled=True, user=2))
    item.refresh_from_db()
    assert item.state == ItemState.SKIPPED and not GroundTruth.objects.exists()
    assert triggers == []


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

"""Reconciliation's own logic (cursor, full listing, claims) over a fake listing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loupe.datasets.models import Item, ItemState
from loupe.labeling import reconcile
from loupe.labeling.ls_payloads import annotation_record
from loupe.labeling.models import Annotation, GroundTruth, LabelStudioSync
from loupe.labeling.sync import claim
from loupe.learning.models import SelectionItem, SelectionRound
from tests.platform.labeling.builders import (
    T0,
    annotation_body,
    items_with_files,
    labeling_project,
    selection_round,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def listing(monkeypatch):
    """What Label Studio holds: annotation records; records the `since` of each call."""
    state = {"records": [], "since": []}

    def annotations_since(client, project_id, updated_after=None):
        state["since"].append(updated_after)
        return iter(
            r for r in state["records"] if updated_after is None or r.updated_at >= updated_after
        )

    def task_ids(client, project_id):
        if state.get("tasks") is not None:
            return set(state["tasks"])
        return set(
            SelectionItem.objects.exclude(ls_task_id=None).values_list("ls_task_id", flat=True)
        )

    monkeypatch.setattr(reconcile.adapter, "annotations_since", annotations_since)
    monkeypatch.setattr(reconcile.adapter, "task_ids", task_ids)
    monkeypatch.setattr("loupe.learning.loop.loop_trigger_on_labels", lambda **kw: None)
    return state


def record(annotation_id, item, *, updated, choice="cat"):
    annotation, task = annotation_body(
        annotation_id, task_id=100 + annotation_id, item_id=item.pk, choice=choice, updated=updated
    )
    return annotation_record(annotation, task, {1: "expert@x"})


def test_the_cursor_follows_the_newest_change_and_a_full_listing_finds_deletions(listing):
    project = labeling_project(ls_project_id=7)
    items = items_with_files(project, 3)
    selection_round(project, items)
    listing["records"] = [record(1, items[0], updated=10), record(2, items[1], updated=20)]

    outcome = reconcile.project_reconcile(project=project, full=False, client=object())

    assert (outcome["applied"], outcome["new_labels"]) == (2, 2)
    sync = LabelStudioSync.objects.get(project=project)
    assert sync.last_synced_at == T0 + timedelta(seconds=20)
    assert Annotation.objects.get(ls_annotation_id=1).annotator == "expert@x"

    listing["records"] = [
        record(1, items[0], updated=10),
        record(3, items[2], updated=30, choice="dog"),
    ]  # annotation 2 was deleted while its webhook was lost
    outcome = reconcile.project_reconcile(project=project, full=False, client=object())
    assert listing["since"][-1] == T0 + timedelta(seconds=20)
    assert (outcome["applied"], outcome["deleted"]) == (1, 0)

    outcome = reconcile.project_reconcile(project=project, full=True, client=object())
    assert listing["since"][-1] is None
    assert outcome["deleted"] == 1
    assert set(Annotation.objects.values_list("ls_annotation_id", flat=True)) == {1, 3}
    assert not GroundTruth.objects.filter(item=items[1]).exists()
    sync.refresh_from_db()
    assert sync.last_full_sync_at is not None and sync.last_synced_at == T0 + timedelta(seconds=30)


def test_recent_annotations_missing_from_a_full_listing_are_kept(listing):
    project = labeling_project(ls_project_id=7)
    (item,) = items_with_files(project, 1)
    selection_round(project, [item])
    # Arrived by webhook while the listing ran: newer than the listing's start.
    fresh = record(1, item, updated=0)
    fresh = type(fresh)(**{**fresh.__dict__, "updated_at": timezone.now()})
    reconcile.annotations_apply(project=project, records=[fresh])

    outcome = reconcile.project_reconcile(project=project, full=True, client=object())

    assert outcome["deleted"] == 0 and Annotation.objects.count() == 1


def test_a_running_reconciliation_makes_a_second_one_a_no_op(listing):
    project = labeling_project(ls_project_id=7)
    assert claim(project=project, kind="reconcile")
    assert reconcile.project_reconcile(project=project, client=object()) == {
        "skipped": "another reconciliation runs"
    }
    assert listing["since"] == []


def test_unlinked_projects_are_not_reconciled(listing):
    project = labeling_project()
    assert "skipped" in reconcile.project_reconcile(project=project, client=object())
    assert reconcile.projects_reconcile_all() == []


def test_a_full_listing_sends_items_of_deleted_tasks_back_to_the_pool(listing):
    """An empty task deleted in Label Studio leaves no annotation to miss; its webhook lost,
    only the full listing of task ids shows it gone."""
    project = labeling_project(ls_project_id=7)
    old_items, new_items = items_with_files(project, 3), items_with_files(project, 1)
    for items, pushed_ago, first_task in ((old_items, 3600, 500), (new_items, 1, 600)):
        picks = selection_round(project, items)
        SelectionRound.objects.filter(pk=picks.pk).update(
            status=SelectionRound.Status.PUSHED,
            pushed_at=timezone.now() - timedelta(seconds=pushed_ago),
        )
        for offset, item in enumerate(items):
            picks.items.filter(item=item).update(ls_task_id=first_task + offset)
            Item.objects.filter(pk=item.pk).update(state=ItemState.IN_ANNOTATION)
    listing["records"] = [record(1, old_items[0], updated=10)]
    # Task 501 was deleted; 600 was pushed a second ago and is not listed yet.
    listing["tasks"] = {500, 502}

    outcome = reconcile.project_reconcile(project=project, full=True, client=object())

    assert outcome["tasks_deleted"] == 1
    states = dict(Item.objects.values_list("pk", "state"))
    assert states == {
        old_items[0].pk: ItemState.LABELED,
        old_items[1].pk: ItemState.UNLABELED,
        old_items[2].pk: ItemState.IN_ANNOTATION,
        new_items[0].pk: ItemState.IN_ANNOTATION,
    }
    assert SelectionItem.objects.get(item=old_items[1]).ls_task_id is None
    # Nothing more is gone the next time.
    assert (
        reconcile.project_reconcile(project=project, full=True, client=object())["tasks_deleted"]
        == 0
    )

"""Retraining triggers (label count, schedule) and cancellation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loupe.datasets.models import Item, ItemState
from loupe.labeling.models import Decision, GroundTruth
from loupe.learning.loop import loop_trigger_on_labels, loops_scheduled
from loupe.learning.models import LearningLoop, RunStatus, TrainingRun
from loupe.learning.training import training_run_cancel, training_run_create, training_run_execute

pytestmark = pytest.mark.django_db


def label_pool_items(project, n):
    good = project.classes.get(name="good")
    items = list(Item.objects.filter(project=project, state=ItemState.UNLABELED)[:n])
    for item in items:
        GroundTruth.objects.create(
            item=item,
            project=project,
            label_class=good,
            decided_by=Decision.SINGLE,
            num_annotators=1,
        )
        item.state = ItemState.LABELED
        item.save()


def queue_pool_items(project, n):
    """A batch still open in Label Studio: n items the experts have not answered."""
    ids = list(
        Item.objects.filter(project=project, state=ItemState.UNLABELED).values_list(
            "pk", flat=True
        )[:n]
    )
    Item.objects.filter(pk__in=ids).update(state=ItemState.QUEUED)
    return ids


def test_enough_new_labels_start_one_loop_and_more_labels_fold_into_it(inspection_project):
    inspection_project.retrain_every_n_labels = 5
    inspection_project.save()
    queue_pool_items(inspection_project, 20)

    label_pool_items(inspection_project, 4)
    assert loop_trigger_on_labels(project=inspection_project) is None
    label_pool_items(inspection_project, 1)
    loop = loop_trigger_on_labels(project=inspection_project)
    label_pool_items(inspection_project, 10)
    again = loop_trigger_on_labels(project=inspection_project)

    assert loop is not None and loop.trigger == "labels"
    assert again is None
    assert LearningLoop.objects.filter(project=inspection_project).count() == 1


def test_a_finished_batch_starts_the_next_loop_whatever_the_label_count(inspection_project):
    # The project defaults: retrain after 100 labels, batches of 50.
    assert inspection_project.retrain_every_n_labels > inspection_project.batch_size
    queued = queue_pool_items(inspection_project, 3)
    label_pool_items(inspection_project, 2)
    assert loop_trigger_on_labels(project=inspection_project) is None  # the batch is open

    Item.objects.filter(pk__in=queued).update(state=ItemState.SKIPPED)
    loop = loop_trigger_on_labels(project=inspection_project)
    assert loop is not None and loop.trigger == "batch_done"


def test_a_tie_waiting_for_review_does_not_hold_the_batch_open(inspection_project):
    (tie,) = queue_pool_items(inspection_project, 1)
    item = Item.objects.get(pk=tie)
    GroundTruth.objects.create(
        item=item,
        project=inspection_project,
        label_class=inspection_project.classes.get(name="good"),
        decided_by=Decision.MAJORITY,
        needs_review=True,
    )
    Item.objects.filter(pk=tie).update(state=ItemState.IN_ANNOTATION)
    label_pool_items(inspection_project, 1)
    loop = loop_trigger_on_labels(project=inspection_project)
    assert loop is not None and loop.trigger == "batch_done"


def test_beat_starts_a_loop_a_lost_trigger_missed(inspection_project):
    label_pool_items(inspection_project, 1)
    started = loops_scheduled()
    assert len(started) == 1
    assert LearningLoop.objects.get(pk=started[0]).trigger == "batch_done"
    assert loops_scheduled() == []  # the loop is active: nothing more


def test_imported_labels_do_not_trigger_retraining(inspection_project):
    inspection_project.retrain_every_n_labels = 1
    inspection_project.save()

    assert loop_trigger_on_labels(project=inspection_project) is None


def test_the_schedule_retrains_when_due_and_labels_changed(inspection_project):
    inspection_project.retrain_every_minutes = 30
    inspection_project.save()
    queue_pool_items(inspection_project, 20)  # a batch open: only the schedule can start a loop
    assert loops_scheduled() == []  # nothing new to learn from

    label_pool_items(inspection_project, 1)
    started = loops_scheduled()
    assert len(started) == 1
    LearningLoop.objects.filter(pk=started[0]).update(
        status=RunStatus.SUCCEEDED, created_at=timezone.now() - timedelta(minutes=10)
    )
    label_pool_items(inspection_project, 1)
    assert loops_scheduled() == []  # not due yet


def test_cancelling_a_running_training_stops_it(inspection_project):
    run = training_run_create(project=inspection_project, enqueue=False)
    # The request arrives while the run is starting; the first heartbeat sees it.
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    done = training_run_execute(training_run_id=run.pk)

    assert done.status == RunStatus.CANCELLED
    assert not hasattr(done, "model_version") or done.model_version is None


def test_a_queued_run_is_cancelled_at_once(inspection_project):
    run = training_run_create(project=inspection_project, enqueue=False)

    assert training_run_cancel(run=run).status == RunStatus.CANCELLED
    assert training_run_execute(training_run_id=run.pk).status == RunStatus.CANCELLED


def test_a_linked_project_with_a_pool_starts_its_first_loop_by_itself(inspection_project):
    from loupe.learning.loop import loop_kickoff

    assert loop_kickoff(project=inspection_project) is None  # not linked to Label Studio yet
    inspection_project.ls_project_id = 12
    inspection_project.save()
    loop = loop_kickoff(project=inspection_project)
    assert loop is not None and loop.trigger == "setup"
    LearningLoop.objects.filter(pk=loop.pk).update(status=RunStatus.SUCCEEDED)
    assert loop_kickoff(project=inspection_project) is None  # only ever the first one

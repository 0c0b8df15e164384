"""The loop train -> score -> select, run in-process (jobs eager)."""

import pytest
from django.core.files.storage import default_storage

from loupe.datasets.models import Item, ItemState
from loupe.learning.loop import loop_score_chunk, loop_start, loop_train, runs_resume
from loupe.learning.models import (
    LearningLoop,
    ModelVersion,
    Prediction,
    RunStatus,
    SelectionItem,
)
from loupe.learning.training import training_run_execute
from ml import artifacts

pytestmark = pytest.mark.django_db


def test_a_loop_trains_scores_and_selects_the_next_batch(
    inspection_project, settings, django_capture_on_commit_callbacks
):
    settings.LOUPE_SCORING_CHUNK_SIZE = 40
    project = inspection_project
    pool = Item.objects.filter(project=project, state=ItemState.UNLABELED).count()

    with django_capture_on_commit_callbacks(execute=True):
        loop, created = loop_start(project=project)

    loop.refresh_from_db()
    assert created and loop.status == RunStatus.SUCCEEDED, loop.error
    version = ModelVersion.objects.get(project=project)
    assert version.version == 1 and version.labels_used > 0
    for metrics in (version.metrics, version.baseline_metrics):
        assert 0.0 <= metrics["balanced_accuracy"] <= 1.0
        assert len(metrics["confusion_matrix"]) == 4
    run = loop.training_run
    assert run.loss_curve and run.device == "cpu" and len(run.class_weights) == 4
    assert Prediction.objects.filter(model_version=version).count() == pool
    assert loop.scoring_run.chunks_total == (pool + 39) // 40
    picks = SelectionItem.objects.filter(selection_round=loop.selection_round)
    assert picks.count() == 12
    assert picks.filter(is_control=True).count() == 3
    assert all(p.reason for p in picks)
    assert Item.objects.filter(project=project, state=ItemState.QUEUED).count() == 12
    assert set(loop.timings) == {"train", "score", "select"}
    # The items it trained on are embedded beside the weights, for selection's diversity.
    with default_storage.open(version.train_embeddings.name, "rb") as handle:
        trained_on = artifacts.load(handle)
    assert len(trained_on.item_ids) == version.labels_used
    assert trained_on.embeddings.shape[0] == version.labels_used


def test_one_active_loop_per_project_and_triggers_fold_into_it(inspection_project):
    first, created = loop_start(project=inspection_project)
    again, created_again = loop_start(project=inspection_project)

    assert created and not created_again and again.pk == first.pk
    assert LearningLoop.objects.filter(project=inspection_project).count() == 1


def test_duplicate_delivery_of_training_and_scoring_changes_nothing(
    inspection_project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        loop, _ = loop_start(project=inspection_project)
    loop.refresh_from_db()
    predictions = Prediction.objects.count()

    # Redelivered messages go through the same doorway as the workers' tasks.
    loop_train(training_run_id=loop.training_run_id)
    for chunk in loop.scoring_run.chunks.all():
        loop_score_chunk(chunk_id=chunk.pk)
    runs_resume()

    assert ModelVersion.objects.filter(project=inspection_project).count() == 1
    assert Prediction.objects.count() == predictions
    assert SelectionItem.objects.count() == 12


def test_a_project_without_labels_gets_a_cold_start_batch(db, django_capture_on_commit_callbacks):
    from loupe.datasets.models import Item, ItemState
    from loupe.projects.services import project_create
    from tests.factories import ItemFactory

    project = project_create(name="Empty", created_by=None, classes=["a", "b"], batch_size=5)
    for _ in range(12):
        ItemFactory(project=project)
    with django_capture_on_commit_callbacks(execute=True):
        loop, _ = loop_start(project=project)

    loop.refresh_from_db()
    assert loop.status == RunStatus.SUCCEEDED and loop.training_run is None
    assert loop.selection_round.strategy == "cold_start"
    assert Item.objects.filter(project=project, state=ItemState.QUEUED).count() == 5


def test_training_without_enough_labels_fails_with_a_clear_message(db):
    from loupe.learning.training import training_run_create, training_run_execute
    from loupe.projects.services import project_create

    project = project_create(name="Empty", created_by=None, classes=["a", "b"])
    run = training_run_create(project=project, enqueue=False)
    run = training_run_execute(training_run_id=run.pk)

    assert run.status == RunStatus.FAILED
    assert "at least 4 labeled items" in run.error


def test_a_bald_project_scores_with_mc_dropout_and_selects(
    inspection_project, django_capture_on_commit_callbacks
):
    inspection_project.strategy = "bald"
    inspection_project.save()

    with django_capture_on_commit_callbacks(execute=True):
        loop, _ = loop_start(project=inspection_project)

    loop.refresh_from_db()
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    picks = SelectionItem.objects.filter(selection_round=loop.selection_round)
    assert picks.filter(is_control=False).first().strategy == "bald"


def test_a_small_labeled_set_still_gets_the_minimum_of_training_steps(inspection_project, settings):
    """A few dozen labels make a handful of steps per epoch: the run trains for at least
    LOUPE_MIN_TRAIN_STEPS steps, in more epochs than the project asks for."""
    from loupe.learning.training import training_run_create

    settings.LOUPE_MIN_TRAIN_STEPS = 40
    settings.LOUPE_EARLY_STOPPING_PATIENCE = 0
    run = training_run_create(project=inspection_project, enqueue=False)
    training_run_execute(training_run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.config["min_steps"] == 40
    steps = run.loss_curve[-1][0]
    assert steps >= 40
    assert len(run.history) > inspection_project.train_epochs


def test_a_version_reports_on_a_holdout_that_did_not_choose_its_epoch(inspection_project, settings):
    """By default training runs its whole plan and keeps the last epoch, so the holdout
    figures a version shows were not picked as the best of several tries on that holdout;
    asking for early stopping keeps the best epoch instead."""
    from loupe.learning.models import ModelVersion
    from loupe.learning.training import training_run_create

    settings.LOUPE_EARLY_STOPPING_MIN_HOLDOUT = 1  # this holdout would be big enough to decide
    settings.LOUPE_MIN_TRAIN_STEPS = 0
    inspection_project.train_epochs = 8
    inspection_project.save()

    def trained():
        run = training_run_create(project=inspection_project, enqueue=False)
        training_run_execute(training_run_id=run.pk)
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error
        version = ModelVersion.objects.get(training_run=run)
        return run, version.metrics["balanced_accuracy"]

    run, reported = trained()
    assert len(run.history) == 8
    assert reported == pytest.approx(run.history[-1]["val_balanced_accuracy"])

    settings.LOUPE_EARLY_STOPPING_PATIENCE = 2
    run, reported = trained()
    best = max(h["val_balanced_accuracy"] for h in run.history)
    assert reported == pytest.approx(best)


def test_classification_trains_on_images_as_they_are_unless_the_project_augments(
    inspection_project, settings, monkeypatch
):
    """By default no training batch is changed; the project's `augmentations` turn on
    flips, turns, shifts or light changes (`ml.augment.Augment`), are recorded in the run's
    config, and are checked against what classification has."""
    from loupe.errors import ApplicationError
    from loupe.learning.training import training_run_create
    from loupe.projects.services import project_update
    from ml.augment import OFF, Augment

    settings.LOUPE_MIN_TRAIN_STEPS = 0
    inspection_project.train_epochs = 1
    inspection_project.save()
    used = []
    real_call = Augment.__call__

    def spy(self, x, generator=None):
        used.append(self)
        return real_call(self, x, generator)

    monkeypatch.setattr(Augment, "__call__", spy)

    def trained():
        used.clear()
        run = training_run_create(project=inspection_project, enqueue=False)
        training_run_execute(training_run_id=run.pk)
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error
        return run

    run = trained()
    assert run.config["augmentations"] == {} and used == []
    project_update(project=inspection_project, augmentations={"hflip": 0.5, "quarter_turns": 0.5})
    run = trained()
    assert run.config["augmentations"] == {"hflip": 0.5, "quarter_turns": 0.5}
    assert used, "no training batch was augmented"
    assert all(a == Augment(**{**OFF, "hflip": 0.5, "quarter_turns": 0.5}) for a in used)
    for bad, words in (
        ({"blur": 0.1}, "Unknown augmentation 'blur'"),
        ({"quarter_turns": 2}, "probability"),
        ({"contrast": 0.7}, "under 0.5"),
        ({"rotate_degrees": -5}, "at least 0"),
    ):
        with pytest.raises(ApplicationError, match=words):
            project_update(project=inspection_project, augmentations=bad)

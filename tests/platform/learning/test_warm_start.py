"""Warm start: a new version fine-tunes the previous one's weights, unless the model, image
size or classes changed, or it is the version that trains from scratch again."""

import pytest
from django.core.files.storage import default_storage

from loupe.accounts.models import Role
from loupe.learning.models import ModelVersion, RunStatus
from loupe.learning.training import training_run_create, training_run_execute
from loupe.projects.services import label_classes_set
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.LOUPE_MIN_TRAIN_STEPS = 12
    settings.LOUPE_WARM_START_STEPS = 5
    settings.LOUPE_FULL_RETRAIN_EVERY = 3
    settings.LOUPE_EARLY_STOPPING_PATIENCE = 0


def train(project):
    run = training_run_create(project=project, enqueue=False)
    run = training_run_execute(training_run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_the_next_version_fine_tunes_the_previous_one_for_its_steps(inspection_project):
    first = train(inspection_project)
    second = train(inspection_project)

    assert first.config["from_scratch"] == "first version"
    assert "warm_start_from" not in first.config
    assert second.config["warm_start_from"] == 1 and "from_scratch" not in second.config
    # Exactly the fine-tuning steps, however many the project's epochs would give.
    assert [p[0] for p in second.loss_curve] == [1, 2, 3, 4, 5]
    assert first.loss_curve[-1][0] >= 12
    # It starts where the first version ended, not from fresh weights.
    assert second.loss_curve[0][1] < 0.8 * first.loss_curve[0][1]


def test_one_version_in_k_trains_from_scratch_again(inspection_project):
    runs = [train(inspection_project) for _ in range(5)]

    starts = [r.config.get("warm_start_from") or r.config["from_scratch"] for r in runs]
    assert starts == [
        "first version",
        1,
        2,
        "full retrain every 3 versions",
        4,
    ]


def test_changed_classes_or_image_size_train_from_scratch(inspection_project):
    train(inspection_project)
    label_classes_set(
        project=inspection_project, classes=["good", "scratch", "dent", "stain", "crack"]
    )
    after_new_class = train(inspection_project)
    inspection_project.image_size = 16
    inspection_project.save()
    after_new_size = train(inspection_project)

    assert after_new_class.config["from_scratch"] == "classes changed since version 1"
    assert ModelVersion.objects.get(training_run=after_new_class).class_names[-1] == "crack"
    assert after_new_size.config["from_scratch"] == "image size changed since version 2"


def test_warm_start_can_be_turned_off(inspection_project, settings):
    settings.LOUPE_WARM_START_STEPS = 0
    train(inspection_project)

    assert train(inspection_project).config["from_scratch"] == "warm start is off"


def test_unreadable_previous_weights_train_from_scratch_and_say_so(inspection_project):
    train(inspection_project)
    queued = training_run_create(project=inspection_project, enqueue=False)
    assert queued.config["warm_start_from"] == 1
    default_storage.delete(ModelVersion.objects.get(version=1).weights.name)

    run = training_run_execute(training_run_id=queued.pk)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.config["from_scratch"] == "the weights of version 1 could not be read"
    assert "warm_start_from" not in run.config
    assert run.loss_curve[-1][0] >= 12  # a full training, not a five-step fine-tune


def test_the_api_says_where_each_version_started(api_client, inspection_project):
    user = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=inspection_project, user=user, role=Role.ENGINEER)
    api_client.force_authenticate(user)
    train(inspection_project)
    second = train(inspection_project)

    versions = api_client.get(f"/api/v1/projects/{inspection_project.slug}/model-versions/")
    run = api_client.get(f"/api/v1/training-runs/{second.pk}/").json()

    by_number = {v["version"]: v for v in versions.json()["results"]}
    assert by_number[1]["from_scratch"] == "first version"
    assert by_number[1]["warm_start_from"] is None
    assert by_number[2]["warm_start_from"] == 1 and by_number[2]["from_scratch"] is None
    assert run["config"]["warm_start_from"] == 1

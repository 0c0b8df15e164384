"""Project settings through the API: every setting reads back as set, an unknown field or a
setting that cannot work is a 400 naming it, and the project says what its loop waits for."""

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import ItemState
from loupe.projects.models import Project
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGED = {
    "strategy": "margin",
    "batch_size": 25,
    "control_fraction": 0.2,
    "retrain_every_n_labels": 40,
    "retrain_every_minutes": 30,
    "train_epochs": 7,
    "class_weighting": "inverse",
    "loss": "focal",
    "image_size": 96,
    "annotator_overlap": 2,
    "holdout_fraction": 0.3,
    "augmentations": {"vflip": 0.5, "quarter_turns": 0.75},
}


@pytest.fixture
def engineer(api_client):
    project = ProjectFactory(slug="line-7")
    user = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=user, role=Role.ENGINEER)
    api_client.force_authenticate(user)
    return api_client, project


def test_every_setting_round_trips_through_the_api(engineer):
    client, project = engineer
    url = f"/api/v1/projects/{project.slug}/"
    defaults = client.get(url).json()["settings"]
    assert set(defaults) == set(CHANGED)  # every setting is readable

    response = client.patch(url, CHANGED, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["settings"] == CHANGED
    assert client.get(url).json()["settings"] == CHANGED
    project.refresh_from_db()
    assert {name: getattr(project, name) for name in CHANGED} == CHANGED


def test_a_new_project_accepts_its_settings_at_creation(api_client):
    user = UserFactory(role=Role.ENGINEER)
    api_client.force_authenticate(user)
    body = {"name": "Welds", "classes": [{"name": "ok"}, {"name": "crack"}], **CHANGED}
    response = api_client.post("/api/v1/projects/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["settings"] == CHANGED


@pytest.mark.parametrize(
    "body",
    [{"retrain_every_minute": 5}, {"batch_size": 10, "colour": "red"}],
)
def test_an_unknown_field_is_a_400_naming_it(engineer, body):
    client, project = engineer
    before = client.get(f"/api/v1/projects/{project.slug}/").json()["settings"]
    response = client.patch(f"/api/v1/projects/{project.slug}/", body, format="json")
    assert response.status_code == 400
    unknown = set(body) - set(CHANGED)
    assert unknown <= set(response.json()["error"]["details"])
    # Nothing was changed, not even the known field beside the unknown one.
    assert client.get(f"/api/v1/projects/{project.slug}/").json()["settings"] == before


def test_an_unknown_class_field_is_a_400(engineer):
    client, project = engineer
    response = client.put(
        f"/api/v1/projects/{project.slug}/classes/",
        {"classes": [{"name": "ok", "target": 5}]},
        format="json",
    )
    assert response.status_code == 400
    assert "target" in str(response.json()["error"]["details"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"strategy": "clairvoyant"}, "strategy"),
        ({"holdout_fraction": 0.8}, "holdout_fraction"),
        ({"batch_size": 0}, "batch_size"),
        ({"train_epochs": 0}, "train_epochs"),
        ({"retrain_every_n_labels": 10**12}, "retrain_every_n_labels"),
        ({"annotator_overlap": 2**40}, "annotator_overlap"),
    ],
)
def test_settings_that_cannot_work_are_refused(engineer, body, field):
    client, project = engineer
    response = client.patch(f"/api/v1/projects/{project.slug}/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in str(error["details"]) or field in error["message"]


def test_the_project_says_what_its_loop_waits_for(engineer):
    client, project = engineer
    url = f"/api/v1/projects/{project.slug}/"
    status = client.get(url).json()["loop_status"]
    assert status["state"] == "idle" and "waiting for labels" in status["message"]

    for _ in range(3):
        ItemFactory(project=project, state=ItemState.QUEUED)
    Project.objects.filter(pk=project.pk).update(retrain_every_n_labels=10)
    status = client.get(url).json()["loop_status"]
    assert status["state"] == "labeling" and status["open_items"] == 3
    assert "3 items to label; the next loop starts when the batch is done" in status["message"]

    # A label count reached before the batch's end is worth saying.
    for _ in range(20):
        ItemFactory(project=project, state=ItemState.QUEUED)
    status = client.get(url).json()["loop_status"]
    assert "after 10 more labels or when the batch is done" in status["message"]

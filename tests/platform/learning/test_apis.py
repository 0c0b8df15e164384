import pytest

from loupe.accounts.models import Role
from loupe.learning.models import LearningLoop, SelectionRound
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def as_member(api_client, project, role):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user, role=role)
    api_client.force_authenticate(user)
    return api_client


@pytest.mark.parametrize("role", [Role.MANAGER, Role.EXPERT])
def test_managers_and_experts_cannot_trigger_jobs(api_client, inspection_project, role):
    client = as_member(api_client, inspection_project, role)

    for url in ("loops", "training-runs"):
        response = client.post(f"/api/v1/projects/{inspection_project.slug}/{url}/")
        assert response.status_code == 403
    assert LearningLoop.objects.count() == 0


def test_an_engineer_starts_a_loop_and_follows_it_to_the_selected_batch(
    api_client, inspection_project, django_capture_on_commit_callbacks
):
    client = as_member(api_client, inspection_project, Role.ENGINEER)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/v1/projects/{inspection_project.slug}/loops/")
    assert started.status_code == 202
    loop = client.get(f"/api/v1/loops/{started.json()['id']}/").json()

    assert loop["status"] == "succeeded" and loop["progress"] == 1.0
    assert loop["training_run"]["status"] == "succeeded"
    assert loop["scoring_run"]["scored_items"] == loop["scoring_run"]["total_items"] > 0
    version = client.get(f"/api/v1/projects/{inspection_project.slug}/model-versions/").json()
    assert version["results"][0]["metrics"]["balanced_accuracy"] >= 0
    assert "balanced_accuracy" in version["results"][0]["baseline_metrics"]
    selected = client.get(f"/api/v1/selection-rounds/{loop['selection_round']}/").json()
    assert len(selected["items"]) == inspection_project.batch_size
    assert selected["items"][0]["reason"]
    assert SelectionRound.objects.get().items.filter(is_control=True).count() == 3


def test_no_retrain_without_new_labels_unless_asked_and_then_it_says_so(
    api_client, inspection_project, django_capture_on_commit_callbacks
):
    client = as_member(api_client, inspection_project, Role.ENGINEER)
    url = f"/api/v1/projects/{inspection_project.slug}/loops/"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 202

    again = client.post(url)
    assert again.status_code == 409
    assert "No new labels since model v1" in again.json()["error"]["message"]
    assert LearningLoop.objects.count() == 1

    assert client.post(url, {"forse": True}, format="json").status_code == 400  # misspelt
    forced = client.post(url, {"force": True}, format="json")
    assert forced.status_code == 202
    assert forced.json()["phase"] == "forced retrain, no labels since v1"


def test_a_second_start_returns_the_active_loop(api_client, inspection_project):
    client = as_member(api_client, inspection_project, Role.ENGINEER)

    first = client.post(f"/api/v1/projects/{inspection_project.slug}/loops/")
    second = client.post(f"/api/v1/projects/{inspection_project.slug}/loops/")

    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]


def test_cancelling_a_queued_training_run(api_client, inspection_project):
    client = as_member(api_client, inspection_project, Role.ENGINEER)
    run = client.post(f"/api/v1/projects/{inspection_project.slug}/training-runs/").json()

    cancelled = client.post(f"/api/v1/training-runs/{run['id']}/cancel/").json()

    assert cancelled["status"] == "cancelled"

import pytest
from django.test import Client

from loupe.accounts.models import Role
from loupe.datasets.models import ItemState
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client():
    project = ProjectFactory(name="Castings", slug="castings")
    user = UserFactory(role=Role.MANAGER)
    MembershipFactory(project=project, user=user, role=Role.MANAGER)
    client = Client()
    client.force_login(user)
    return client, project


def test_pages_need_a_login():
    response = Client().get("/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_the_gallery_shows_items_and_their_state(member_client):
    client, project = member_client
    ItemFactory.create_batch(3, project=project)
    ItemFactory(project=project, state=ItemState.QUEUED)

    page = client.get("/projects/castings/").content.decode()

    assert page.count('class="tile"') == 4
    assert "<b>3</b> unlabeled" in page and "<b>1</b> queued for labeling" in page
    filtered = client.get("/projects/castings/?state=queued").content.decode()
    assert filtered.count('class="tile"') == 1


def test_the_project_list_shows_only_my_projects(member_client):
    client, _ = member_client
    ProjectFactory(name="Secret welding line")

    page = client.get("/").content.decode()

    assert "Castings" in page and "Secret welding line" not in page
    assert client.get("/projects/" + "project-0/").status_code == 404


def test_an_empty_project_explains_itself(member_client):
    client, _ = member_client
    page = client.get("/projects/castings/").content.decode()
    assert "No items match these filters" in page

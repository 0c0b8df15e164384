"""The permission matrix of the README, cell by cell where it matters."""

import pytest

from loupe.accounts.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(api_client, user):
    api_client.force_authenticate(user)
    return api_client


@pytest.fixture
def project():
    return ProjectFactory(slug="line-7")


def member(project, role):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user, role=role)
    return user


def test_a_user_sees_only_their_projects(api_client):
    mine, theirs = ProjectFactory(slug="mine"), ProjectFactory(slug="theirs")
    user = member(mine, Role.EXPERT)
    client = client_for(api_client, user)

    listed = client.get("/api/v1/projects/").json()["results"]

    assert [p["slug"] for p in listed] == ["mine"]
    hidden = client.get("/api/v1/projects/theirs/")
    assert hidden.status_code == 404
    assert client.get("/api/v1/projects/theirs/items/").status_code == 404
    assert theirs.slug == "theirs"


def test_items_of_another_project_are_not_reachable(api_client):
    from tests.factories import ItemFactory

    other = ItemFactory()
    user = member(ProjectFactory(), Role.ENGINEER)

    response = client_for(api_client, user).get(f"/api/v1/items/{other.pk}/")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.ADMIN, True), (Role.ENGINEER, True), (Role.EXPERT, False), (Role.MANAGER, False)],
)
def test_only_admins_and_engineers_import(api_client, project, import_root, role, allowed):
    (import_root / "empty").mkdir()
    user = member(project, role)

    response = client_for(api_client, user).post(
        f"/api/v1/projects/{project.slug}/imports/", {"path": str(import_root / "empty")}
    )

    assert response.status_code == (202 if allowed else 403)
    if not allowed:
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.ADMIN, True), (Role.ENGINEER, True), (Role.EXPERT, False), (Role.MANAGER, False)],
)
def test_only_admins_and_engineers_change_project_settings(api_client, project, role, allowed):
    user = member(project, role)

    response = client_for(api_client, user).patch(
        f"/api/v1/projects/{project.slug}/", {"batch_size": 20}, format="json"
    )

    assert response.status_code == (200 if allowed else 403)
    project.refresh_from_db()
    assert project.batch_size == (20 if allowed else 50)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.ADMIN, True), (Role.ENGINEER, False), (Role.EXPERT, False), (Role.MANAGER, False)],
)
def test_only_project_admins_manage_members(api_client, project, role, allowed):
    user = member(project, role)
    newcomer = UserFactory(username="newcomer")

    response = client_for(api_client, user).post(
        f"/api/v1/projects/{project.slug}/members/", {"username": "newcomer", "role": "expert"}
    )

    assert response.status_code == (201 if allowed else 403)
    assert project.memberships.filter(user=newcomer).exists() == allowed


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.ADMIN, True), (Role.ENGINEER, True), (Role.EXPERT, False), (Role.MANAGER, False)],
)
def test_who_may_create_projects(api_client, role, allowed):
    user = UserFactory(role=role)

    response = client_for(api_client, user).post(
        "/api/v1/projects/", {"name": "Welds", "classes": [{"name": "ok"}]}, format="json"
    )

    assert response.status_code == (201 if allowed else 403)
    if allowed:
        assert response.json()["your_role"] == "admin"


def test_managers_and_experts_can_read_items(api_client, project):
    for role in (Role.MANAGER, Role.EXPERT):
        user = member(project, role)
        response = client_for(api_client, user).get(f"/api/v1/projects/{project.slug}/items/")
        assert response.status_code == 200


def test_anonymous_requests_are_refused_with_the_error_shape(api_client, project):
    response = api_client.get("/api/v1/projects/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_token_obtained_with_a_password_authenticates(api_client, project):
    user = member(project, Role.MANAGER)

    token = api_client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": "pw-secret-123"}
    ).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    me = api_client.get("/api/v1/me/").json()
    assert (me["username"], me["role"]) == (user.username, "manager")
    wrong = api_client.post("/api/v1/auth/token/", {"username": user.username, "password": "x"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.ADMIN, True), (Role.ENGINEER, True), (Role.EXPERT, False), (Role.MANAGER, True)],
)
@pytest.mark.parametrize("name", ["ground-truth.csv", "ground-truth.jsonl", "imagefolder.zip"])
def test_experts_do_not_export_the_ground_truth(api_client, project, role, allowed, name):
    user = member(project, role)

    response = client_for(api_client, user).get(f"/api/v1/projects/{project.slug}/exports/{name}")

    assert response.status_code == (200 if allowed else 403)
    if not allowed:
        assert "export" in response.json()["error"]["message"]

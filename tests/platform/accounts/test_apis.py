"""Users and memberships through the API, by an admin."""

import pytest
from django.contrib.auth import get_user_model

from loupe.accounts.models import Membership, Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


@pytest.fixture
def admin(api_client):
    return UserFactory(username="boss", role=Role.ADMIN)


def test_an_admin_creates_a_user_who_can_then_sign_in(api_client, admin):
    response = as_user(api_client, admin).post(
        "/api/v1/users/",
        {"username": "vera", "email": "vera@plant.example", "role": "expert"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["username"], body["email"], body["role"]) == (
        "vera",
        "vera@plant.example",
        "expert",
    )
    password = body["password"]
    assert password and len(password) >= 12
    api_client.force_authenticate(None)
    token = api_client.post(
        "/api/v1/auth/token/", {"username": "vera", "password": password}, format="json"
    )
    assert token.status_code == 200
    assert get_user_model().objects.get(username="vera").loupe_profile.role == Role.EXPERT


def test_a_given_password_is_used_and_never_echoed(api_client, admin):
    response = as_user(api_client, admin).post(
        "/api/v1/users/",
        {"username": "otto", "password": "long-enough-phrase-42", "role": "engineer"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["password"] is None
    assert get_user_model().objects.get(username="otto").check_password("long-enough-phrase-42")


def test_a_superuser_without_profile_may_create_users(api_client):
    root = get_user_model().objects.create_superuser("root", "", "pw")
    response = as_user(api_client, root).post(
        "/api/v1/users/", {"username": "mia", "role": "manager"}, format="json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.EXPERT, Role.MANAGER])
def test_only_admins_create_and_list_users(api_client, role):
    client = as_user(api_client, UserFactory(role=role))

    created = client.post("/api/v1/users/", {"username": "sneaky"}, format="json")
    listed = client.get("/api/v1/users/")

    assert created.status_code == 403
    assert listed.status_code == 403
    assert not get_user_model().objects.filter(username="sneaky").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "bad name"}, "username"),
        ({"username": "x", "role": "overlord"}, "role"),
        ({"username": "x", "email": "not-an-email"}, "email"),
        ({"username": "x", "is_superuser": True}, "is_superuser"),
    ],
)
def test_invalid_or_unknown_fields_are_refused(api_client, admin, body, field):
    response = as_user(api_client, admin).post("/api/v1/users/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_duplicate_username_or_email_and_weak_password_are_refused(api_client, admin):
    UserFactory(username="taken", email="taken@plant.example")
    client = as_user(api_client, admin)

    same_name = client.post("/api/v1/users/", {"username": "taken"}, format="json")
    same_email = client.post(
        "/api/v1/users/", {"username": "other", "email": "TAKEN@plant.example"}, format="json"
    )
    weak = client.post("/api/v1/users/", {"username": "weak", "password": "123"}, format="json")

    assert [r.status_code for r in (same_name, same_email, weak)] == [400, 400, 400]
    assert same_email.json()["error"]["code"] == "conflict"
    assert not get_user_model().objects.filter(username__in=["other", "weak"]).exists()


def test_admins_list_users_with_their_account_roles(api_client, admin):
    UserFactory(username="eng", role=Role.ENGINEER)

    response = as_user(api_client, admin).get("/api/v1/users/")

    assert response.status_code == 200
    roles = {u["username"]: u["role"] for u in response.json()["results"]}
    assert roles == {"boss": "admin", "eng": "engineer"}


def test_a_project_admin_adds_and_removes_a_member(api_client, admin):
    project = ProjectFactory(slug="line-7")
    MembershipFactory(project=project, user=admin, role=Role.ADMIN)
    expert = UserFactory(username="vera")
    client = as_user(api_client, admin)

    added = client.post(
        "/api/v1/projects/line-7/members/", {"username": "vera", "role": "expert"}, format="json"
    )
    removed = client.delete("/api/v1/projects/line-7/members/vera/")
    again = client.delete("/api/v1/projects/line-7/members/vera/")

    assert added.status_code == 201
    assert removed.status_code == 204
    assert again.status_code == 404
    assert not Membership.objects.filter(project=project, user=expert).exists()
    members = client.get("/api/v1/projects/line-7/members/").json()
    assert [m["username"] for m in members] == ["boss"]


def test_members_who_are_not_admins_cannot_remove_anyone(api_client):
    project = ProjectFactory(slug="line-7")
    engineer = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=engineer, role=Role.ENGINEER)
    MembershipFactory(project=project, user=UserFactory(username="vera"), role=Role.EXPERT)

    response = as_user(api_client, engineer).delete("/api/v1/projects/line-7/members/vera/")

    assert response.status_code == 403
    assert Membership.objects.filter(project=project, user__username="vera").exists()


def test_the_last_admin_of_a_project_stays(api_client, admin):
    project = ProjectFactory(slug="line-7")
    MembershipFactory(project=project, user=admin, role=Role.ADMIN)

    response = as_user(api_client, admin).delete("/api/v1/projects/line-7/members/boss/")

    assert response.status_code == 400
    assert "last admin" in response.json()["error"]["message"]
    assert Membership.objects.filter(project=project, user=admin).exists()


def test_me_shows_the_label_studio_login_once_loupe_made_it(api_client, settings):
    from loupe.labeling.models import LabelStudioUser

    settings.LABEL_STUDIO_PUBLIC_URL = "http://ls.example"
    vera = UserFactory(username="vera")
    client = as_user(api_client, vera)
    assert client.get("/api/v1/me/").json()["label_studio"] is None

    LabelStudioUser.objects.create(
        user=vera, ls_user_id=5, email="vera@users.loupe.local", password="s3cret-pw"
    )

    assert client.get("/api/v1/me/").json() == {
        "username": "vera",
        "role": "expert",
        "label_studio": {
            "url": "http://ls.example",
            "email": "vera@users.loupe.local",
            "password": "s3cret-pw",
            "ls_user_id": 5,
        },
    }

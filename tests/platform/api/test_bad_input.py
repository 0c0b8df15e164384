"""Bad input is the client's fault: 400 or 413 in the one error shape, never a 500, even
before anyone signed in."""

import json

import pytest
from django.test import Client

from loupe.accounts.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.platform.labeling.builders import labeling_project, model_version

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"


@pytest.fixture
def small_limits(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    return settings


def error_of(response, status):
    assert response.status_code == status, response.content[:300]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["message"]
    assert "Traceback" not in response.content.decode()
    return error


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/x-www-form-urlencoded"],
)
def test_a_body_over_the_limit_is_a_413(small_limits, content_type):
    if content_type == "application/json":
        body = json.dumps({"username": "a", "password": "x" * 100_000})
    else:
        body = "username=a&password=" + "x" * 100_000

    response = Client().post(TOKEN, body, content_type=content_type)

    error = error_of(response, 413)
    assert error["code"] == "too_large" and error["details"]["max_bytes"] == 64 * 1024


def test_a_body_over_the_limit_is_a_413_for_signed_in_users_too(small_limits):
    project = ProjectFactory(slug="p")
    user = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=user, role=Role.ENGINEER)
    client = Client()
    client.force_login(user)

    response = client.patch(
        "/api/v1/projects/p/",
        json.dumps({"guidelines": "x" * 100_000}),
        content_type="application/json",
    )

    assert error_of(response, 413)["code"] == "too_large"


def test_too_many_form_fields_is_a_400(small_limits):
    form = "&".join(f"field{i}=1" for i in range(150))

    response = Client().post(TOKEN, form, content_type="application/x-www-form-urlencoded")

    error = error_of(response, 400)
    assert error["code"] == "too_many_fields" and error["details"]["max_fields"] == 100


def test_too_many_multipart_fields_is_a_400(small_limits):
    response = Client().post(TOKEN, {f"field{i}": "1" for i in range(150)})

    assert error_of(response, 400)["code"] == "too_many_fields"


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"username": 1' + "0" * 5000 + ', "password": "x"}',
        "{not json",
    ],
)
def test_a_body_that_is_not_usable_json_is_a_400(body):
    response = Client().post(TOKEN, body, content_type="application/json")

    assert error_of(response, 400)["code"] == "parse_error"


@pytest.mark.parametrize("body", [[], "x", None, {"username": {"a": None}, "password": [None]}])
def test_a_token_request_of_the_wrong_shape_is_a_400(body):
    response = Client().post(TOKEN, json.dumps(body), content_type="application/json")

    assert error_of(response, 400)["code"] == "invalid"


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/projects/p/insights/throughput/", {"days": "²"}),
        ("/api/v1/projects/p/insights/eta/", {"days": "1" * 5000}),
        ("/api/v1/projects/p/insights/throughput/", {"days": str(10**30)}),
        ("/api/v1/projects/p/items/", {"page_size": str(10**30)}),
        ("/api/v1/projects/p/predictions/", {"page_size": str(10**30)}),
        ("/api/v1/projects/p/predictions/", {"version": str(10**30)}),
    ],
)
def test_out_of_range_query_values_are_a_4xx(api_client, url, params):
    project = ProjectFactory(slug="p")
    user = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=user, role=Role.ENGINEER)
    api_client.force_authenticate(user)

    response = api_client.get(url, params)

    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        error_of(response, response.status_code)


def test_a_models_page_with_a_version_that_is_no_number_still_renders(client):
    project = labeling_project()
    model_version(project)
    user = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=user, role=Role.ENGINEER)
    client.force_login(user)

    for wanted in ("²", "1" * 5000):
        response = client.get(f"/projects/{project.slug}/models/", {"v": wanted})
        assert response.status_code == 200

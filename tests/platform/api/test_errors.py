"""One JSON error shape; no traceback ever reaches a client."""

import pytest
from django.test import Client

from loupe.accounts.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer_client(api_client):
    project = ProjectFactory(slug="p")
    user = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=user, role=Role.ENGINEER)
    api_client.force_authenticate(user)
    return api_client


def test_validation_errors_use_the_error_shape(engineer_client):
    response = engineer_client.patch("/api/v1/projects/p/", {"batch_size": -3}, format="json")

    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid" and "batch_size" in body["details"]


def test_unknown_api_urls_answer_json_404():
    response = Client().get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_unexpected_failure_is_a_500_without_traceback(engineer_client, monkeypatch):
    from loupe.projects import apis

    def boom(**kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(apis, "project_get", boom)
    response = engineer_client.get("/api/v1/projects/p/")

    assert response.status_code == 500
    text = response.content.decode()
    assert "secret internal detail" not in text and "Traceback" not in text
    assert response.json()["error"]["code"] == "server_error"


def test_application_errors_carry_their_details(engineer_client):
    response = engineer_client.post("/api/v1/projects/p/imports/", {"path": "/etc"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "path_not_allowed"
    assert "allowed_roots" in response.json()["error"]["details"]


def test_openapi_schema_and_docs_page_are_served():
    schema = Client().get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/projects/{slug}/items/" in schema.content
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()

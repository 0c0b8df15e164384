"""The OpenAPI schema says what the API answers: lists as the pages they are, the error
shape on every operation where an error can come, and the ranges query parameters accept."""

import pytest
from django.test import Client

from tests.factories import ProjectFactory, UserFactory

PAGINATED_LISTS = [
    "/api/v1/users/",
    "/api/v1/projects/",
    "/api/v1/projects/{slug}/items/",
    "/api/v1/projects/{slug}/imports/",
    "/api/v1/projects/{slug}/loops/",
    "/api/v1/projects/{slug}/training-runs/",
    "/api/v1/projects/{slug}/model-versions/",
    "/api/v1/projects/{slug}/selection-rounds/",
    "/api/v1/projects/{slug}/predictions/",
]
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["components"]["schemas"][name]
    return node


def body_schema(schema: dict, response: dict) -> dict:
    return resolve(schema, response["content"]["application/json"]["schema"])


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def query_parameter(schema: dict, path: str, name: str) -> dict:
    parameters = schema["paths"][path]["get"].get("parameters", [])
    found = [p for p in parameters if p["in"] == "query" and p["name"] == name]
    assert found, f"{path} documents no `{name}` parameter"
    return found[0]["schema"]


@pytest.mark.parametrize("path", PAGINATED_LISTS)
def test_lists_are_documented_as_pages(schema, path):
    page = body_schema(schema, schema["paths"][path]["get"]["responses"]["200"])
    assert page["type"] == "object"
    assert set(page["required"]) == {"next", "previous", "results"}
    assert page["properties"]["next"]["nullable"] is True
    assert page["properties"]["results"]["type"] == "array"
    assert query_parameter(schema, path, "cursor")["type"] == "string"


def test_lists_that_are_not_paged_stay_arrays(schema):
    members = schema["paths"]["/api/v1/projects/{slug}/members/"]["get"]["responses"]["200"]
    assert members["content"]["application/json"]["schema"]["type"] == "array"


def test_every_operation_documents_its_errors_in_the_one_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = resolve(schema, error["properties"]["error"])
    assert set(detail["required"]) == {"code", "message", "details"}
    missing = []
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        expected = set()
        if method != "GET" or any(p["in"] == "query" for p in operation.get("parameters", [])):
            expected.add("400")
        if operation.get("security") and {} not in operation["security"]:
            expected.add("401")
            if method != "GET":
                expected.add("403")
        if "{" in path:
            expected.add("404")
        errors = {code for code in responses if code[0] in "45"}
        if not errors or not expected <= errors:
            missing.append(f"{method} {path}: {sorted(expected - errors) or 'no error at all'}")
        for code in errors:
            ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/Error"), (method, path, code)
            assert responses[code]["description"], (method, path, code)
    assert missing == []


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("POST", "/api/v1/auth/token/", "401"),  # wrong password
        ("POST", "/api/v1/labeling/webhook/", "403"),  # wrong secret
        ("GET", "/api/v1/users/", "403"),  # admins only
        ("GET", "/api/v1/projects/{slug}/exports/ground-truth.csv", "403"),
        ("POST", "/api/v1/projects/{slug}/loops/", "409"),  # no new label
        ("POST", "/api/v1/labeling/projects/{slug}/sync/", "503"),  # Label Studio away
    ],
)
def test_errors_particular_to_an_operation_are_documented(schema, method, path, code):
    assert code in schema["paths"][path][method.lower()]["responses"]


@pytest.mark.parametrize(
    ("path", "name", "low", "high"),
    [
        ("/api/v1/projects/{slug}/insights/throughput/", "days", 1, 365),
        ("/api/v1/projects/{slug}/insights/eta/", "days", 1, 365),
        ("/api/v1/projects/{slug}/items/", "page_size", 1, 500),
        ("/api/v1/projects/", "page_size", 1, 500),
        ("/api/v1/projects/{slug}/predictions/", "page_size", 1, 500),
    ],
)
def test_range_rules_of_query_parameters_are_in_the_schema(schema, path, name, low, high):
    rule = query_parameter(schema, path, name)
    assert (rule["type"], rule["minimum"], rule["maximum"]) == ("integer", low, high)


@pytest.mark.django_db
def test_a_forged_cursor_of_a_list_is_a_400_in_the_error_shape(api_client):
    ProjectFactory(slug="p")
    api_client.force_authenticate(UserFactory())
    response = api_client.get("/api/v1/projects/", {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "cursor" in response.json()["error"]["message"]

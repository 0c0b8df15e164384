"""schemathesis against Loupe's own OpenAPI schema, in-process through the WSGI app: for every
operation a handful of generated requests (on the objects of a small project and on unknown
ones), signed in as an admin. No answer is a server error, and every answer is one the
schema describes: a documented status, content type, headers and body."""

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from loupe.accounts.models import Membership, Role
from loupe.accounts.services import user_token
from loupe.datasets.services import import_job_create
from loupe.labeling.sync import WEBHOOK_SECRET_HEADER
from loupe.learning.models import LearningLoop
from loupe.projects.services import project_create
from tests.factories import UserFactory
from tests.images import png_bytes
from tests.platform.insights.builders import (
    annotate,
    item,
    picked,
    scored,
    truth,
    version,
    with_file,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EXAMPLES_PER_OPERATION = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Operations that talk to Label Studio answer 502/503 (in the error shape) when it is away;
# the suite has none running.
LABEL_STUDIO_DOWN = {
    ("POST", "/api/v1/labeling/projects/{slug}/sync/"),
}


@pytest.fixture
def world(import_root, settings):
    """A small project with one of each thing the API names by id, and an admin's token."""
    settings.LOUPE_JOBS_EAGER = False  # jobs queue; nothing trains inside the requests
    admin = UserFactory(username="root", role=Role.ADMIN)
    member = UserFactory(username="member", role=Role.EXPERT)
    project = project_create(
        name="Probe", slug="probe", created_by=admin, classes=["good", "bad"], image_size=32
    )
    Membership.objects.create(project=project, user=member, role=Role.EXPERT)
    good, bad = project.classes.order_by("order")
    items = [with_file(item(project), seed=i) for i in range(4)]
    truth(items[0], good)
    annotate(items[0], "ann", good)
    annotate(items[1], "ann", good)
    annotate(items[1], "bob", bad)
    model = version(project, 1, labels_used=1, bal_acc=0.7, base=0.5)
    scoring = scored(model, {items[1]: good, items[2]: bad, items[3]: good})
    selection = picked(project, 1, [(items[2], bad, False), (items[3], good, True)], v=model)
    loop = LearningLoop.objects.create(
        project=project, training_run=model.training_run, scoring_run=scoring
    )
    (import_root / "batch").mkdir()
    (import_root / "batch" / "a.png").write_bytes(png_bytes(9))
    job = import_job_create(project=project, path=str(import_root / "batch"), enqueue=False)
    return {
        "token": user_token(user=admin),
        "ids": {
            "slug": project.slug,
            "item_id": items[1].pk,
            "import_id": job.pk,
            "loop_id": loop.pk,
            "version_id": model.pk,
            "round_id": selection.pk,
            "username": member.username,
            "run_id": {"training": model.training_run_id, "scoring": scoring.pk},
        },
    }


@pytest.fixture
def wsgi_app():
    """The WSGI app, keeping the test's database connection open between requests (as
    Django's test client does): the test's transaction spans every request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def loupe_schema():
    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(raw)
    schema.config.generation.update(modes=["positive"])
    return schema


def known_ids(path: str, names, ids: dict) -> dict:
    """The path parameters of `path` filled with the world's objects."""
    chosen = {}
    for name in names:
        value = ids[name]
        if isinstance(value, dict):
            value = value["scoring" if "scoring-runs" in path else "training"]
        chosen[name] = value
    return chosen


def strategies_for(operation, ids: dict):
    """Generated requests on unknown objects, on the world's objects, and for the webhook
    with the right secret as well as a wrong one."""
    strategies = [operation.as_strategy()]
    names = [p.name for p in operation.path_parameters]
    if names:
        known = known_ids(operation.path, names, ids)
        strategies.append(operation.as_strategy(path_parameters=known))
    if operation.path.endswith("/webhook/"):
        secret = {WEBHOOK_SECRET_HEADER: django_settings.LABEL_STUDIO_WEBHOOK_SECRET}
        strategies.append(operation.as_strategy(headers=secret))
    return st.one_of(strategies)


def exercise(operation, *, app, headers: dict, ids: dict) -> None:
    """A handful of generated requests; raises on the first answer the checks refuse."""
    label_studio_down = (operation.method.upper(), operation.path) in LABEL_STUDIO_DOWN

    @seed(0)
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        phases=[Phase.explicit, Phase.generate],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategies_for(operation, ids))
    def run(case):
        response = case.call(app=app, headers=headers)
        checks = CHECKS
        if label_studio_down and response.status_code in (502, 503):
            checks = [check for check in CHECKS if check is not not_a_server_error]
        case.validate_response(response, checks=checks, headers=headers)

    run()


def test_every_answer_is_one_the_schema_describes(world, wsgi_app):
    headers = {"Authorization": f"Token {world['token']}"}
    failures = []
    for result in loupe_schema().get_all_operations():
        operation = result.ok()
        try:
            exercise(operation, app=wsgi_app, headers=headers, ids=world["ids"])
        except (Exception, BaseExceptionGroup) as exc:  # one report for all operations
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)

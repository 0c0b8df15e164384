"""A webhook's body is logged only at DEBUG: at INFO the log names the task and its ids."""

import logging

import pytest

from config.celery import app
from loupe.learning.models import SelectionRound
from tests.platform.labeling.builders import (
    annotation_body,
    items_with_files,
    labeling_project,
    selection_round,
    webhook,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(settings, monkeypatch):
    """Jobs go to a broker (not run in-process); what would be sent is collected."""
    settings.LOUPE_JOBS_EAGER = False
    settings.LABEL_STUDIO_WEBHOOK_SECRET = "the-secret"
    calls = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: calls.append(name))
    return calls


def test_the_payload_is_logged_at_debug_only(
    api_client, sent, caplog, django_capture_on_commit_callbacks
):
    project = labeling_project(ls_project_id=7)
    (item,) = items_with_files(project, 1)
    selection = selection_round(project, [item])
    selection.items.update(ls_task_id=41)
    SelectionRound.objects.filter(pk=selection.pk).update(status=SelectionRound.Status.PUSHED)
    annotation, task = annotation_body(5, task_id=41, item_id=item.pk, choice="dog")
    annotation["result"][0]["meta"] = {"text": ["scratch near the rim, see photo 3"]}
    body = webhook("ANNOTATION_CREATED", 7, annotation=annotation, task=task)

    with (
        caplog.at_level(logging.DEBUG, logger="loupe"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_client.post(
            "/api/v1/labeling/webhook/",
            body,
            format="json",
            HTTP_X_LOUPE_WEBHOOK_SECRET="the-secret",
        )

    assert response.json() == {"status": "queued"}
    assert sent == ["labeling.apply_events"]
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("labeling.apply_events" in m for m in info)
    assert not any("scratch near the rim" in m for m in info)
    assert any("scratch near the rim" in m for m in debug)

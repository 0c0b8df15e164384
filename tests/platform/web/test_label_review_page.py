"""The label-review page: the labels the model doubts with their evidence, the send button
for engineers, and the outcome of the review rounds."""

import pytest
from django.test import Client

from loupe.accounts.models import Role
from loupe.labeling import sync
from loupe.labeling.events import events_apply
from loupe.learning.label_suspects import label_suspects_scan
from tests.factories import MembershipFactory, UserFactory
from tests.platform.labeling.builders import annotation_body, webhook
from tests.platform.labeling.review_builders import suspect_world

pytestmark = pytest.mark.django_db

LS_PROJECT = 7


@pytest.fixture
def label_studio(monkeypatch):
    monkeypatch.setattr(sync.adapter, "project_ensure", lambda client, **kw: LS_PROJECT)
    monkeypatch.setattr(sync.adapter, "local_storage_ensure", lambda *a, **k: 1)
    monkeypatch.setattr(sync.adapter, "webhook_ensure", lambda *a, **k: 1)
    monkeypatch.setattr(sync, "project_label_studio_users_ensure", lambda **kw: None)
    monkeypatch.setattr("loupe.learning.loop.loop_kickoff", lambda *, project: None)
    monkeypatch.setattr("loupe.learning.loop.loop_trigger_on_labels", lambda *, project: None)
    monkeypatch.setattr(
        sync.adapter,
        "tasks_push",
        lambda client, project_id, tasks: {t.item_id: 700 + i for i, t in enumerate(tasks)},
    )


def client_as(project, role):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def url(project, suffix=""):
    return f"/projects/{project.slug}/label-review/{suffix}"


def test_members_see_the_doubted_labels_with_their_evidence():
    world = suspect_world(trained_on=12)
    label_suspects_scan(model_version=world.version)

    html = client_as(world.project, Role.EXPERT).get(url(world.project)).content.decode()

    assert "Labels the model doubts (model v1)" in html
    row = html[html.index(f'data-item="{world.flipped.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "<b>dent</b>" in row and "<b>scratch</b> (95%)" in row
    assert "out of sample · labeled since" in row
    assert "alice: dent, bob: dent, carol: scratch · agreement 67%" in row
    in_sample = html[html.index(f'data-item="{world.in_sample_flip.pk}"') :]
    assert "in sample · weaker" in in_sample[: in_sample.index("</tr>")]
    assert "In sample, weaker evidence" in html
    assert 'id="send-review"' not in html  # experts answer reviews; they do not send them


def test_before_the_scan_the_page_says_it_is_coming(django_capture_on_commit_callbacks):
    world = suspect_world()
    client = client_as(world.project, Role.MANAGER)

    with django_capture_on_commit_callbacks(execute=False):
        html = client.get(url(world.project)).content.decode()

    assert 'id="scanning"' in html and "Model v1 is looking at the labels now" in html


def test_an_engineer_sends_the_queue_and_the_rounds_count_the_answers(
    label_studio, django_capture_on_commit_callbacks
):
    world = suspect_world(trained_on=12, ls_project_id=LS_PROJECT)
    label_suspects_scan(model_version=world.version)
    assert (
        client_as(world.project, Role.EXPERT).post(url(world.project, "send/")).status_code == 403
    )
    engineer = client_as(world.project, Role.ENGINEER)
    assert 'id="send-review"' in engineer.get(url(world.project)).content.decode()

    with django_capture_on_commit_callbacks(execute=True):  # the push, after commit
        html = engineer.post(url(world.project, "send/")).content.decode()

    assert "Review round 1 with 2 labels is on its way to Label Studio." in html
    assert 'id="no-suspects"' in html
    assert "<b>0</b> confirmed, <b>0</b> corrected, <b>2</b> waiting for an answer" in html
    task = world.flipped.selections.get().ls_task_id
    annotation, body = annotation_body(1, task_id=task, item_id=world.flipped.pk, choice="scratch")
    events_apply(
        payload=webhook("ANNOTATION_CREATED", LS_PROJECT, annotation=annotation, task=body)
    )
    html = engineer.get(url(world.project)).content.decode()
    assert "<b>0</b> confirmed, <b>1</b> corrected, <b>1</b> waiting for an answer" in html
    again = engineer.post(url(world.project, "send/"))
    assert again.status_code == 400
    assert "No suspect label is waiting for review." in again.content.decode()

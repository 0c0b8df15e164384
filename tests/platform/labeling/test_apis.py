"""The labeling API: webhook authentication and validation, deep links, agreement, review."""

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import ItemState
from loupe.labeling.models import Annotation, GroundTruth
from loupe.learning.models import SelectionRound
from tests.factories import MembershipFactory, UserFactory
from tests.platform.labeling.builders import (
    annotation_body,
    items_with_files,
    labeling_project,
    selection_round,
    webhook,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/labeling/webhook/"
SECRET_HEADER = "HTTP_X_LOUPE_WEBHOOK_SECRET"


@pytest.fixture
def project(settings):
    settings.LABEL_STUDIO_WEBHOOK_SECRET = "the-secret"
    settings.LABEL_STUDIO_PUBLIC_URL = "http://ls.example"
    return labeling_project(ls_project_id=7)


@pytest.fixture
def pushed_item(project):
    (item,) = items_with_files(project, 1)
    selection = selection_round(project, [item])
    selection.items.update(ls_task_id=41)
    SelectionRound.objects.filter(pk=selection.pk).update(status=SelectionRound.Status.PUSHED)
    return item


def body_for(item, choice="dog"):
    annotation, task = annotation_body(5, task_id=41, item_id=item.pk, choice=choice)
    return webhook("ANNOTATION_CREATED", 7, annotation=annotation, task=task)


def member(project, role):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user, role=role)
    return user


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: ""}])
def test_webhook_without_the_right_secret_is_refused_and_changes_nothing(
    api_client, pushed_item, headers
):
    response = api_client.post(URL, body_for(pushed_item), format="json", **headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Annotation.objects.exists() and not GroundTruth.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        ["not", "an", "object"],
        {"project": {"id": 7}},
        {"action": "ANNOTATION_CREATED", "project": {"id": 7}},
        {"action": "ANNOTATION_CREATED", "project": {"id": 7}, "annotation": {"result": []}},
        {"action": "TASKS_DELETED", "project": {"id": 7}, "tasks": [{"no": "id"}]},
    ],
)
def test_malformed_webhook_is_a_400_with_the_error_shape(api_client, project, body):
    response = api_client.post(URL, body, format="json", HTTP_X_LOUPE_WEBHOOK_SECRET="the-secret")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed" and error["message"]


def test_webhook_of_an_unknown_project_is_ignored_and_logged(api_client, pushed_item, caplog):
    body = body_for(pushed_item)
    body["project"]["id"] = 999
    response = api_client.post(URL, body, format="json", HTTP_X_LOUPE_WEBHOOK_SECRET="the-secret")
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert "unknown project 999" in caplog.text
    assert not Annotation.objects.exists()


def test_webhook_with_the_secret_becomes_ground_truth(
    api_client, pushed_item, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("loupe.learning.loop.loop_trigger_on_labels", lambda **kw: None)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            URL, body_for(pushed_item), format="json", HTTP_X_LOUPE_WEBHOOK_SECRET="the-secret"
        )
    assert response.status_code == 200 and response.json() == {"status": "queued"}
    assert GroundTruth.objects.get(item=pushed_item).label_class.name == "dog"


def test_deep_links_of_an_item_a_round_and_the_project(api_client, project, pushed_item):
    api_client.force_authenticate(member(project, Role.EXPERT))

    item = api_client.get(f"/api/v1/labeling/items/{pushed_item.pk}/").json()
    assert item["task_url"] == "http://ls.example/projects/7/data/?task=41"
    assert item["tasks"][0]["reason"].startswith("margin score")

    round_id = pushed_item.selections.get().selection_round_id
    selection = api_client.get(f"/api/v1/labeling/rounds/{round_id}/").json()
    assert selection["label_now_url"] == "http://ls.example/projects/7/data?labeling=1"
    assert (selection["status"], selection["tasks"], selection["items"]) == ("pushed", 1, 1)

    status = api_client.get(f"/api/v1/labeling/projects/{project.slug}/").json()
    assert status["label_now_url"] == "http://ls.example/projects/7/data?labeling=1"
    assert status["ls_project_id"] == 7


def test_agreement_per_project_class_and_annotator(api_client, project):
    items = items_with_files(project, 4)
    classes = {c.name: c for c in project.classes.all()}
    answers = {  # annotator -> labels of the four items
        "ann@x": ["cat", "cat", "dog", "dog"],
        "bob@x": ["cat", "cat", "dog", "cat"],
        "cyd@x": ["cat", "dog", "dog", "dog"],
    }
    ls_id = 0
    for annotator, labels in answers.items():
        for item, label in zip(items, labels, strict=True):
            ls_id += 1
            Annotation.objects.create(
                item=item,
                project_id=item.project_id,
                label_class=classes[label],
                annotator=annotator,
                ls_annotation_id=ls_id,
            )
    api_client.force_authenticate(member(project, Role.MANAGER))

    stats = api_client.get(f"/api/v1/labeling/projects/{project.slug}/agreement/").json()

    assert (stats["items"], stats["annotations"]) == (4, 12)
    assert 0 < stats["alpha"] < 1
    assert stats["pairwise_agreement"] == pytest.approx(8 / 12)
    by_class = {c["name"]: c for c in stats["classes"]}
    assert by_class["cat"]["votes"] + by_class["dog"]["votes"] == 12
    by_annotator = {a["annotator"]: a for a in stats["annotators"]}
    # Ann always sides with the majority of the others; the others do not.
    assert by_annotator["ann@x"]["agreement_with_others"] == 1.0
    assert by_annotator["ann@x"]["kappa"] == pytest.approx(1.0)
    assert by_annotator["bob@x"]["agreement_with_others"] < 1.0


def test_review_needs_the_label_permission_and_decides(
    api_client, project, pushed_item, monkeypatch
):
    monkeypatch.setattr("loupe.learning.loop.loop_trigger_on_labels", lambda **kw: None)
    url = f"/api/v1/labeling/items/{pushed_item.pk}/review/"
    api_client.force_authenticate(member(project, Role.MANAGER))
    assert api_client.post(url, {"label": "cat"}, format="json").status_code == 403

    api_client.force_authenticate(member(project, Role.EXPERT))
    assert api_client.post(url, {"label": "bird"}, format="json").status_code == 400
    answer = api_client.post(url, {"label": "cat"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["ground_truth"]["decided_by"] == "review"
    assert answer.json()["state"] == ItemState.LABELED

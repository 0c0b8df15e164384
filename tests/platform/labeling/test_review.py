"""The label-error review queue: suspects with their evidence, a review round sent to Label
Studio, and what the experts' answers do to the ground truth."""

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import ItemState
from loupe.labeling import review, sync
from loupe.labeling.events import events_apply
from loupe.labeling.models import Decision, GroundTruth
from loupe.learning.label_suspects import label_suspects_scan
from loupe.learning.models import SelectionRound
from tests.factories import MembershipFactory, UserFactory
from tests.platform.labeling.builders import annotation_body, webhook
from tests.platform.labeling.review_builders import suspect_world

pytestmark = pytest.mark.django_db

LS_PROJECT = 7
URL = "/api/v1/projects/{}/label-review/"


class PushedTasks:
    """Label Studio stands in: records the tasks Loupe pushes."""

    def __init__(self, monkeypatch):
        self.tasks = []
        monkeypatch.setattr(sync.adapter, "project_ensure", lambda client, **kw: LS_PROJECT)
        monkeypatch.setattr(sync.adapter, "local_storage_ensure", lambda *a, **k: 1)
        monkeypatch.setattr(sync.adapter, "webhook_ensure", lambda *a, **k: 1)
        monkeypatch.setattr(sync.adapter, "tasks_push", self.tasks_push)
        monkeypatch.setattr(sync, "project_label_studio_users_ensure", lambda **kw: None)

    def tasks_push(self, client, project_id, tasks):
        self.tasks.extend(tasks)
        return {t.item_id: 700 + i for i, t in enumerate(tasks)}


@pytest.fixture
def label_studio(monkeypatch):
    return PushedTasks(monkeypatch)


@pytest.fixture
def triggers(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "loupe.learning.loop.loop_trigger_on_labels", lambda *, project: calls.append(project)
    )
    monkeypatch.setattr("loupe.learning.loop.loop_kickoff", lambda *, project: None)
    return calls


def login(api_client, project, role):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user, role=role)
    api_client.force_authenticate(user)
    return user


def answer(annotation_id, item, task_id, choice, user=5, updated=10.0):
    annotation, task = annotation_body(
        annotation_id, task_id=task_id, item_id=item.pk, choice=choice, user=user, updated=updated
    )
    return webhook("ANNOTATION_CREATED", LS_PROJECT, annotation=annotation, task=task)


def test_a_label_flipped_on_purpose_is_among_the_suspects_with_its_evidence():
    world = suspect_world()
    label_suspects_scan(model_version=world.version)

    queue = review.label_review_queue(project=world.project)

    assert queue["status"] == "ready" and queue["model_version"] == 1
    suspects = {s["item_id"]: s for s in queue["suspects"]}
    assert list(suspects) == [world.flipped.pk]  # the consistent labels are not suspected
    flipped = suspects[world.flipped.pk]
    assert (flipped["given"], flipped["predicted"], flipped["confidence"]) == (
        "dent",
        "scratch",
        0.95,
    )
    # Scored in the pool before it was labeled: the version never trained on it.
    assert flipped["evidence"] == "labeled_since" and flipped["out_of_sample"]
    assert flipped["decided"] == "by 2 of 3 annotators"
    assert flipped["agreement"] == pytest.approx(2 / 3)
    assert {(v["annotator"], v["label"]) for v in flipped["votes"]} == {
        ("alice", "dent"),
        ("bob", "dent"),
        ("carol", "scratch"),
    }
    assert queue["checked"] == {"holdout": 6, "labeled_since": 18, "training": 0}


def test_labels_the_version_trained_on_are_suspects_in_sample():
    world = suspect_world(trained_on=12)
    label_suspects_scan(model_version=world.version)

    queue = review.label_review_queue(project=world.project)

    by_item = {s["item_id"]: s for s in queue["suspects"]}
    assert set(by_item) == {world.flipped.pk, world.in_sample_flip.pk}
    in_sample = by_item[world.in_sample_flip.pk]
    assert (in_sample["given"], in_sample["predicted"]) == ("scratch", "good")
    assert in_sample["evidence"] == "training" and not in_sample["out_of_sample"]
    assert by_item[world.flipped.pk]["out_of_sample"]
    # Out-of-sample suspects come first; the note says which predictions are which.
    assert queue["suspects"][0]["item_id"] == world.flipped.pk
    assert queue["checked"] == {"holdout": 3, "labeled_since": 10, "training": 11}
    assert "In sample, weaker evidence" in queue["evidence_note"]


def test_the_queue_asks_a_worker_for_the_scan_once_and_every_member_reads_it(
    api_client, django_capture_on_commit_callbacks
):
    world = suspect_world()
    login(api_client, world.project, Role.MANAGER)
    url = URL.format(world.project.slug)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        first = api_client.get(url)
        again = api_client.get(url)
    assert first.status_code == 200
    assert first.json()["status"] == again.json()["status"] == "scanning"
    assert len(queued) == 1  # one scan, run here by the eager worker

    ready = api_client.get(url).json()
    assert ready["status"] == "ready"
    assert [s["item_id"] for s in ready["suspects"]] == [world.flipped.pk]
    assert ready["suspects"][0]["image_url"] == f"/api/v1/items/{world.flipped.pk}/file/"


def test_without_a_model_there_is_nothing_to_review(api_client):
    world = suspect_world()
    world.version.delete()
    login(api_client, world.project, Role.EXPERT)

    body = api_client.get(URL.format(world.project.slug)).json()

    assert body["status"] == "no_model" and body["suspects"] == []


def test_sending_the_queue_needs_an_engineer_and_makes_review_tasks(
    api_client, label_studio, triggers, django_capture_on_commit_callbacks
):
    world = suspect_world(trained_on=12, ls_project_id=LS_PROJECT)
    label_suspects_scan(model_version=world.version)
    send = URL.format(world.project.slug) + "send/"
    login(api_client, world.project, Role.EXPERT)
    assert api_client.post(send, {}, format="json").status_code == 403

    login(api_client, world.project, Role.ENGINEER)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(send, {}, format="json")

    assert response.status_code == 202, response.json()
    assert response.json()["sent"] == 2 and response.json()["pending"] == 2
    selection = SelectionRound.objects.get(pk=response.json()["id"])
    assert selection.strategy == review.LABEL_REVIEW
    assert selection.status == SelectionRound.Status.PUSHED
    tasks = {t.item_id: t for t in label_studio.tasks}
    assert set(tasks) == {world.flipped.pk, world.in_sample_flip.pk}
    task = tasks[world.flipped.pk]
    # The task opens on the label under review and says why it came back.
    assert task.prediction.result[0]["value"]["choices"] == ["dent"]
    assert task.reason.startswith("sent back for review: labeled dent (by 2 of 3 annotators)")
    assert "model v1 says scratch (95%)" in task.reason
    assert "in-sample" in tasks[world.in_sample_flip.pk].reason
    # Labeled items stay labeled (they keep training) while they are reviewed.
    world.flipped.refresh_from_db()
    assert world.flipped.state == ItemState.LABELED
    # Sent suspects leave the queue; nothing is left to send.
    assert api_client.get(URL.format(world.project.slug)).json()["suspects"] == []
    again = api_client.post(send, {}, format="json")
    assert again.status_code == 400 and again.json()["error"]["code"] == "nothing_to_send"


def test_answers_are_counted_confirmed_or_corrected_and_a_correction_changes_the_truth(
    api_client, label_studio, triggers, django_capture_on_commit_callbacks
):
    world = suspect_world(trained_on=12, ls_project_id=LS_PROJECT)
    label_suspects_scan(model_version=world.version)
    with django_capture_on_commit_callbacks(execute=True):
        selection = review.label_review_send(project=world.project)
    task_of = dict(selection.items.values_list("item_id", "ls_task_id"))
    login(api_client, world.project, Role.EXPERT)

    with django_capture_on_commit_callbacks(execute=True):
        # The imported "scratch" on a good part is corrected.
        events_apply(
            payload=answer(1, world.in_sample_flip, task_of[world.in_sample_flip.pk], "good")
        )
    body = api_client.get(URL.format(world.project.slug)).json()
    assert body["rounds"][0] | {"created_at": None} == {
        "id": selection.pk,
        "number": selection.number,
        "status": SelectionRound.Status.PUSHED,  # one task is still open
        "model_version": 1,
        "created_at": None,
        "push_error": "",
        "sent": 2,
        "confirmed": 0,
        "corrected": 1,
        "pending": 1,
    }
    corrected = GroundTruth.objects.get(item=world.in_sample_flip)
    # Imported labels are sticky against votes; a review answer decides all the same.
    assert (corrected.label_class.name, corrected.decided_by) == ("good", Decision.REVIEW)
    assert triggers == [world.project]  # a changed label: retraining may start

    with django_capture_on_commit_callbacks(execute=True):
        events_apply(payload=answer(2, world.flipped, task_of[world.flipped.pk], "dent"))
    body = api_client.get(URL.format(world.project.slug)).json()
    assert body["totals"] == {"confirmed": 1, "corrected": 1, "pending": 0}
    assert body["rounds"][0]["status"] == SelectionRound.Status.COMPLETE
    confirmed = GroundTruth.objects.get(item=world.flipped)
    assert (confirmed.label_class.name, confirmed.decided_by) == ("dent", Decision.REVIEW)
    # Three voters before, the reviewer makes four, three of whom said dent.
    assert (confirmed.num_annotators, confirmed.agreement) == (4, 0.75)
    assert triggers == [world.project]  # a confirmation changes no label


def test_a_review_decision_holds_against_later_votes_and_follows_a_changed_review(
    label_studio, triggers, django_capture_on_commit_callbacks
):
    world = suspect_world(ls_project_id=LS_PROJECT)
    label_suspects_scan(model_version=world.version)
    with django_capture_on_commit_callbacks(execute=True):
        selection = review.label_review_send(project=world.project)
    task = selection.items.get().ls_task_id

    events_apply(payload=answer(1, world.flipped, task, "scratch", user=5, updated=10))
    # Two more ordinary votes for dent on the item's earlier task change nothing.
    events_apply(payload=answer(2, world.flipped, 8000, "dent", user=6, updated=20))
    events_apply(payload=answer(3, world.flipped, 8000, "dent", user=7, updated=30))
    assert GroundTruth.objects.get(item=world.flipped).label_class.name == "scratch"

    # The reviewer changes their mind in Label Studio: the decision follows.
    updated = answer(1, world.flipped, task, "dent", user=5, updated=40)
    events_apply(payload={**updated, "action": "ANNOTATION_UPDATED"})
    assert GroundTruth.objects.get(item=world.flipped).label_class.name == "dent"
    assert review.review_rounds(project=world.project)[0]["confirmed"] == 1

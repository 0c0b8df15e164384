"""The adapter against a real Label Studio server started for the session."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from loupe.labeling import adapter
from loupe.labeling.adapter import (
    LabelStudioUnavailable,
    PushPrediction,
    PushTask,
    choices_result,
    labeling_config,
    local_file_url,
    parse_webhook,
)

# The fixture is imported to register it in this module.
from tests.integration.labelstudio_server import free_port

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog"]
SECRET = ("X-Loupe-Webhook-Secret", "s3cret")


@pytest.fixture(scope="module")
def server(labelstudio_server):
    return labelstudio_server


@pytest.fixture(scope="module")
def client(server):
    return adapter.client_for(server.url, server.token)


@pytest.fixture
def project_id(client):
    return adapter.project_ensure(
        client,
        title=f"test {uuid.uuid4().hex[:8]}",
        label_config=labeling_config("image_classification", CLASSES, "Look at the ears."),
        expert_instruction="<p>Look at the ears.</p>",
    )


def push_task(item_id, round_id=1, predicted="cat", score=0.6, version="run-1"):
    return PushTask(
        item_id=item_id,
        round_id=round_id,
        image=local_file_url(f"items/{item_id}.png"),
        reason="low margin between cat and dog",
        prediction=PushPrediction(choices_result([predicted]), score, version),
    )


def annotate(client, task_id, classes, **extra):
    """What an expert's Submit does: one annotation on the task."""
    return client.annotations.create(id=task_id, result=choices_result(classes), **extra)


def test_project_follows_class_changes_and_a_lost_project_is_recreated(client, project_id):
    wider = labeling_config("image_classification", [*CLASSES, "bird"])
    same = adapter.project_ensure(
        client, title="renamed", label_config=wider, ls_project_id=project_id, overlap=3
    )
    project = client.projects.get(project_id)
    assert same == project_id
    assert "bird" in project.label_config
    assert (project.title, project.maximum_annotations) == ("renamed", 3)

    client.projects.delete(project_id)
    new_id = adapter.project_ensure(
        client, title="renamed", label_config=wider, ls_project_id=project_id
    )
    assert new_id != project_id
    assert client.projects.get(new_id).title == "renamed"


@pytest.mark.parametrize("task_type", ["image_multi_label", "object_detection"])
def test_label_studio_accepts_the_configs_of_later_task_types(client, task_type):
    config = labeling_config(task_type, CLASSES, "Guidelines.")
    project_id = adapter.project_ensure(client, title=f"{task_type} config", label_config=config)
    assert client.projects.get(project_id).label_config == config


def test_push_creates_tasks_in_order_with_predictions(client, project_id):
    mapping = adapter.tasks_push(
        client, project_id, [push_task(30, score=0.51), push_task(10), push_task(20)]
    )
    assert list(mapping) == [30, 10, 20]
    tasks = sorted(client.tasks.list(project=project_id), key=lambda t: t.id)
    assert [t.data["loupe_item_id"] for t in tasks] == [30, 10, 20]
    assert [t.id for t in tasks] == list(mapping.values())
    first = tasks[0]
    assert first.data["loupe_round_id"] == 1
    assert first.data["loupe_reason"] == "low margin between cat and dog"
    (prediction,) = first.predictions
    assert prediction.score == pytest.approx(0.51)
    assert prediction.model_version == "run-1"
    assert prediction.result == choices_result(["cat"])
    assert client.projects.get(project_id).model_version == "run-1"


def test_push_is_idempotent_per_item_and_round(client, project_id):
    first = adapter.tasks_push(client, project_id, [push_task(1), push_task(2)])
    again = adapter.tasks_push(client, project_id, [push_task(2), push_task(1), push_task(3)])
    assert again[1] == first[1] and again[2] == first[2]
    next_round = adapter.tasks_push(client, project_id, [push_task(1, round_id=2, version="run-2")])
    assert next_round[1] not in first.values()
    tasks = list(client.tasks.list(project=project_id, fields="task_only"))
    keys = [(t.data["loupe_item_id"], t.data["loupe_round_id"]) for t in tasks]
    assert sorted(keys) == [(1, 1), (1, 2), (2, 1), (3, 1)]
    # The newest round's predictions are the ones Label Studio shows as pre-annotations.
    assert client.projects.get(project_id).model_version == "run-2"


def test_annotations_since_returns_what_experts_changed(client, project_id, server):
    mapping = adapter.tasks_push(client, project_id, [push_task(1), push_task(2)])
    before = datetime.now(UTC)
    created = annotate(client, mapping[1], ["dog"], lead_time=4.5)
    skipped = client.annotations.create(id=mapping[2], result=[], was_cancelled=True)

    records = {r.id: r for r in adapter.annotations_since(client, project_id, before)}
    assert set(records) == {created.id, skipped.id}
    dog = records[created.id]
    assert (dog.item_id, dog.round_id, dog.task_id) == (1, 1, mapping[1])
    assert dog.classes == ["dog"]
    assert dog.lead_time == pytest.approx(4.5)
    assert dog.completed_by_email == server.username
    assert not dog.was_cancelled
    assert records[skipped.id].was_cancelled and records[skipped.id].classes == []

    time.sleep(1.5)  # past the one-second slack of the filter
    after = datetime.now(UTC)
    assert list(adapter.annotations_since(client, project_id, after)) == []
    client.annotations.update(created.id, result=choices_result(["cat"]))
    (changed,) = adapter.annotations_since(client, project_id, after)
    assert (changed.id, changed.classes) == (created.id, ["cat"])
    assert {r.id for r in adapter.annotations_since(client, project_id)} == set(records)


class _Receiver:
    """A webhook endpoint that records what Label Studio posts."""

    def __init__(self):
        self.received: list[tuple[dict, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/labeling/webhook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self):
        return [parse_webhook(body) for _, body in self.received]


@pytest.fixture
def receiver():
    receiver = _Receiver()
    yield receiver
    receiver.server.shutdown()


def test_webhook_reports_annotation_changes_with_the_secret(client, project_id, receiver):
    hook = adapter.webhook_ensure(
        client, project_id=project_id, url=receiver.url, secret_header=SECRET
    )
    assert (
        adapter.webhook_ensure(
            client, project_id=project_id, url=receiver.url, secret_header=SECRET
        )
        == hook
    )
    mapping = adapter.tasks_push(client, project_id, [push_task(5), push_task(6)])
    created = annotate(client, mapping[5], ["cat"])
    client.annotations.update(created.id, result=choices_result(["dog"]))
    client.annotations.delete(created.id)
    client.tasks.delete(str(mapping[6]))

    events = receiver.events()
    assert [e.action for e in events] == [
        "ANNOTATION_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_DELETED",
        "TASKS_DELETED",
    ]
    assert all(headers.get(SECRET[0]) == SECRET[1] for headers, _ in receiver.received)
    assert all(e.project_id == project_id for e in events)
    assert [(r.item_id, r.classes) for r in events[0].annotations] == [(5, ["cat"])]
    assert [(r.item_id, r.classes) for r in events[1].annotations] == [(5, ["dog"])]
    assert events[2].deleted_annotation_ids == [created.id]
    assert events[3].deleted_task_ids == [mapping[6]]


def test_changing_the_secret_updates_the_one_webhook(client, project_id):
    url = "http://127.0.0.1:9/labeling/webhook/"
    first = adapter.webhook_ensure(client, project_id=project_id, url=url, secret_header=SECRET)
    second = adapter.webhook_ensure(
        client, project_id=project_id, url=url, secret_header=(SECRET[0], "rotated")
    )
    hooks = [w for w in client.webhooks.list(project=str(project_id)) if w.url == url]
    assert [w.id for w in hooks] == [first] == [second]
    assert hooks[0].headers == {SECRET[0]: "rotated"}


def test_expert_sees_the_item_image_and_the_task_link(client, project_id, server):
    items = server.media_root / "items"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    (items / "42.png").write_bytes(buffer.getvalue())
    adapter.local_storage_ensure(client, project_id=project_id, path=str(items))
    assert adapter.local_storage_ensure(client, project_id=project_id, path=str(items)) == (
        adapter.local_storage_ensure(client, project_id=project_id, path=str(items) + "/")
    )
    mapping = adapter.tasks_push(client, project_id, [push_task(42)])

    with httpx.Client(base_url=server.url) as browser:
        browser.get("/user/login/")
        browser.post(
            "/user/login/",
            data={
                "email": server.username,
                "password": server.password,
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": f"{server.url}/user/login/"},
        )
        task = client.tasks.get(str(mapping[42]))
        image = browser.get(task.data["image"])
        assert image.status_code == 200
        assert image.content == buffer.getvalue()
        page = browser.get(adapter.task_url(server.url, project_id, mapping[42]))
        assert page.status_code == 200


def test_server_down_raises_unavailable():
    down = adapter.client_for(
        f"http://127.0.0.1:{free_port()}", "any-token-123", timeout=2, max_retries=0
    )
    config = labeling_config("image_classification", CLASSES)
    with pytest.raises(LabelStudioUnavailable):
        adapter.project_ensure(down, title="x", label_config=config)
    with pytest.raises(LabelStudioUnavailable):
        adapter.tasks_push(down, 1, [push_task(1)])
    with pytest.raises(LabelStudioUnavailable):
        list(adapter.annotations_since(down, 1, None))
    with pytest.raises(LabelStudioUnavailable):
        adapter.webhook_ensure(down, project_id=1, url="http://x/", secret_header=SECRET)


def test_guidelines_stay_available_but_never_pop_up(client):
    config = labeling_config("image_classification", CLASSES, "Look at the ears.")
    # A project linked before: its instructions were shown before labeling.
    old = client.projects.create(
        title="pop-up",
        label_config=config,
        expert_instruction="<p>Ears.</p>",
        show_instruction=True,
    )

    same = adapter.project_ensure(
        client,
        title="pop-up",
        label_config=config,
        expert_instruction="<p>Ears.</p>",
        ls_project_id=old.id,
    )
    new = adapter.project_ensure(
        client, title="new", label_config=config, expert_instruction="<p>Ears.</p>"
    )

    for project_id in (same, new):
        project = client.projects.get(project_id)
        assert (project.show_instruction, project.expert_instruction) == (False, "<p>Ears.</p>")

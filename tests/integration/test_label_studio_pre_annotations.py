"""Pre-annotations stay visible on open tasks after a retrain: Label Studio's labeling
stream ("Label" / next task) pre-annotates a task only with predictions of the project's
selected model version."""

from __future__ import annotations

import httpx
import pytest

from loupe.labeling import adapter
from loupe.labeling.adapter import PushPrediction, PushTask, choices_result, labeling_config
from loupe.labeling.services import selection_round_push
from tests.platform.labeling.builders import (
    items_with_files,
    labeling_project,
    model_version,
    selection_round,
)

pytestmark = [pytest.mark.labelstudio, pytest.mark.django_db]


@pytest.fixture
def server(labelstudio_server, settings):
    settings.LABEL_STUDIO_URL = labelstudio_server.url
    settings.LABEL_STUDIO_API_TOKEN = labelstudio_server.token
    settings.MEDIA_ROOT = str(labelstudio_server.media_root)
    return labelstudio_server


@pytest.fixture
def client(server):
    return adapter.client_for(server.url, server.token)


def next_task(server, ls_project_id: int) -> dict:
    """The task "Label" serves next, as the labeling view receives it."""
    answer = httpx.get(
        f"{server.url}/api/projects/{ls_project_id}/next",
        headers={"Authorization": f"Token {server.token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def test_open_tasks_of_an_earlier_version_keep_their_pre_annotation(server, client):
    project = labeling_project()
    items = items_with_files(project, 3)
    first = selection_round(project, items[:2], version=model_version(project, 1))
    selection_round_push(selection_round=first)
    first_tasks = dict(first.items.values_list("item_id", "ls_task_id"))
    client.annotations.create(id=first_tasks[items[1].pk], result=choices_result(["cat"]))

    # A retrain: the next round comes from a newer model version.
    second = selection_round(project, items[2:], version=model_version(project, 2), number=2)
    selection_round_push(selection_round=second)

    project.refresh_from_db()
    served = next_task(server, project.ls_project_id)
    assert served["id"] == first_tasks[items[0].pk]  # the older round's task comes first
    assert [p["result"] for p in served["predictions"]] == [choices_result(["dog"])]
    assert served["data"]["loupe_model_version"] == "loupe-v1"
    newer = client.tasks.get(second.items.get().ls_task_id)
    assert newer.data["loupe_model_version"] == "loupe-v2"


def test_switching_the_project_version_moves_the_open_tasks_predictions(server, client):
    """Projects whose tasks carry a name per version (or whose version was changed in Label
    Studio) get their open tasks' predictions moved to the new version."""
    project_id = adapter.project_ensure(
        client, title="versions", label_config=labeling_config("image_classification", ["a", "b"])
    )

    def task(item_id, round_id, version):
        return PushTask(
            item_id=item_id,
            round_id=round_id,
            image="/data/local-files/?d=items/x.png",
            prediction=PushPrediction(choices_result(["b"]), 0.7, version),
        )

    tasks = adapter.tasks_push(client, project_id, [task(1, 1, "loupe-v1"), task(2, 1, "loupe-v1")])
    client.annotations.create(id=tasks[2], result=choices_result(["a"]))
    adapter.tasks_push(client, project_id, [task(3, 2, "loupe-v2")])

    assert client.projects.get(project_id).model_version == "loupe-v2"
    versions = {p.task: p.model_version for p in client.predictions.list(project=project_id)}
    assert versions[tasks[1]] == "loupe-v2"  # open: moved, so it stays visible
    assert versions[tasks[2]] == "loupe-v1"  # answered: left as it was
    served = next_task(server, project_id)
    assert served["id"] == tasks[1]
    assert [p["result"] for p in served["predictions"]] == [choices_result(["b"])]

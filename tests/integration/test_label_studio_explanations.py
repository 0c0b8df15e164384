"""The batch the loop picks reaches a real Label Studio explained: each task carries the URL
of its saliency overlay, which Label Studio serves, and the labeled items it resembles with
their classes, both drawn under the reason in the labeling view."""

from __future__ import annotations

import httpx
import pytest

from loupe.labeling import adapter
from loupe.labeling.services import project_sync
from loupe.learning.models import LearningLoop, RunStatus, SelectionRound

pytestmark = [pytest.mark.labelstudio, pytest.mark.django_db(transaction=True)]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def explained_project(server, request):
    """The inspection project, imported into the media Label Studio serves, linked: linking
    starts its first loop, which trains, scores, selects, explains and pushes in-process."""
    project = request.getfixturevalue("inspection_project")
    project_sync(project=project)
    project.refresh_from_db()
    loop = LearningLoop.objects.get(project=project)
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    selection = loop.selection_round
    assert selection.status == SelectionRound.Status.PUSHED, selection.push_error
    return project, selection


def served(server, url: str) -> httpx.Response:
    return httpx.get(
        server.url + url, headers={"Authorization": f"Token {server.token}"}, timeout=10
    )


def test_tasks_carry_the_overlay_and_the_nearest_labeled_items(server, explained_project):
    project, selection = explained_project
    client = adapter.client_for(server.url, server.token)
    picks = {p.item_id: p for p in selection.items.select_related("predicted_class")}

    tasks = list(client.tasks.list(project=project.ls_project_id))

    assert len(tasks) == len(picks) == 12
    classes = {c.name for c in project.classes.all()}
    for task in tasks:
        data = task.data
        pick = picks[data["loupe_item_id"]]
        assert data["loupe_saliency"] == f"/data/local-files/?d={pick.saliency.name}"
        assert len(data["loupe_neighbours"]) == 3
        assert [n["label"] for n in data["loupe_neighbours"]] == [
            n["label"] for n in pick.neighbours
        ]
        assert {n["label"] for n in data["loupe_neighbours"]} <= classes
        html = data["loupe_explanation"]
        assert data["loupe_saliency"] in html and "Looks like these labeled items" in html
        assert all(n["image"] in html for n in data["loupe_neighbours"])
    # Label Studio serves the overlay and the neighbours' images to the labeling view.
    first = tasks[0].data
    overlay = served(server, first["loupe_saliency"])
    assert overlay.status_code == 200 and overlay.content.startswith(PNG_SIGNATURE)
    neighbour = served(server, first["loupe_neighbours"][0]["image"])
    assert neighbour.status_code == 200 and len(neighbour.content) > 0
    config = client.projects.get(project.ls_project_id).label_config
    assert 'value="$loupe_explanation"' in config

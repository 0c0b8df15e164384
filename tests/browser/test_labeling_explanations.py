"""In Label Studio, the expert sees beside the image where the model looked and the labeled
items the pick resembles, under the reason, with the choices still in view."""

import re

import pytest

from loupe.accounts.models import Role
from loupe.accounts.services import membership_set, user_create
from loupe.labeling.ls_payloads import label_stream_url
from loupe.labeling.people import label_studio_login
from loupe.labeling.services import project_sync
from loupe.learning.models import LearningLoop, RunStatus, SelectionRound
from tests.integration.labelstudio_server import labelstudio_server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.labelstudio, pytest.mark.django_db]

ALL_DECODED = """sel => { const imgs = Array.from(document.querySelectorAll(sel));
    return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }"""


@pytest.fixture
def server(labelstudio_server, settings):  # noqa: F811
    settings.LABEL_STUDIO_URL = labelstudio_server.url
    settings.LABEL_STUDIO_API_TOKEN = labelstudio_server.token
    settings.MEDIA_ROOT = str(labelstudio_server.media_root)
    return labelstudio_server


def test_an_expert_sees_where_the_model_looked_and_what_the_item_resembles(
    server, request, page, screenshot, django_capture_on_commit_callbacks
):
    project = request.getfixturevalue("inspection_project")  # imported where LS serves media
    project.train_epochs = 15
    project.save(update_fields=["train_epochs"])
    vera = user_create(username="vera", password="pw")
    membership_set(project=project, user=vera, role=Role.EXPERT)
    with django_capture_on_commit_callbacks(execute=True):
        project_sync(project=project)  # linking starts the first loop, which pushes its batch
    loop = LearningLoop.objects.get(project=project)
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    assert loop.selection_round.status == SelectionRound.Status.PUSHED
    project.refresh_from_db()
    login = label_studio_login(user=vera)

    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{server.url}/user/login/")
    page.fill("input[name=email]", login["email"])
    page.fill("input[name=password]", login["password"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url)
    page.goto(label_stream_url(server.url, project.ls_project_id))
    page.get_by_text("Looks like these labeled items").wait_for(timeout=30_000)
    page.wait_for_function(ALL_DECODED, arg="img[alt='saliency overlay']", timeout=15_000)
    page.wait_for_function(ALL_DECODED, arg="img[alt^='item ']", timeout=15_000)
    screenshot("labeling-explanation")

    assert page.get_by_text(re.compile(r"^What the model looked at to say \w+")).is_visible()
    overlay = page.locator("img[alt='saliency overlay']").bounding_box()
    assert 0 < overlay["width"] <= 200
    assert page.locator("img[alt^='item ']").count() == 3
    image = page.locator("img[src^='blob:']").first.bounding_box()
    assert image["width"] <= 512 and image["height"] <= 512
    height = page.viewport_size["height"]
    for name in ("good", "scratch", "dent", "stain"):
        box = page.get_by_text(re.compile(rf"^{name}(\[\d+\])?$")).first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, f"{name} below the fold"

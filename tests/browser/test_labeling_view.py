"""The expert's view in Label Studio: they sign in with the login Loupe made for them, and
the task shows the image at a bounded size beside the choices, all in view, with the model's
guess chosen, why the item was picked, and no instructions pop-up."""

import re

import pytest

from loupe.accounts.models import Role
from loupe.accounts.services import membership_set, user_create
from loupe.labeling.ls_payloads import label_stream_url
from loupe.labeling.people import label_studio_login
from loupe.labeling.services import selection_round_push
from tests.integration.labelstudio_server import labelstudio_server  # noqa: F401
from tests.platform.labeling.builders import (
    items_with_files,
    labeling_project,
    model_version,
    selection_round,
)

pytestmark = [pytest.mark.browser, pytest.mark.labelstudio, pytest.mark.django_db]

CLASSES = ["good", "scratch", "dent", "stain", "crack", "burr", "chip", "pit"]


@pytest.fixture
def server(labelstudio_server, settings):  # noqa: F811
    settings.LABEL_STUDIO_URL = labelstudio_server.url
    settings.LABEL_STUDIO_API_TOKEN = labelstudio_server.token
    settings.MEDIA_ROOT = str(labelstudio_server.media_root)
    return labelstudio_server


def test_an_expert_labels_with_image_and_choices_in_view(server, page, screenshot):
    project = labeling_project(classes=CLASSES)
    vera = user_create(username="vera", password="pw")
    membership_set(project=project, user=vera, role=Role.EXPERT)
    items = items_with_files(project, 2)
    selection = selection_round(project, items, version=model_version(project))
    selection_round_push(selection_round=selection)
    project.refresh_from_db()
    login = label_studio_login(user=vera)

    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{server.url}/user/login/")
    page.fill("input[name=email]", login["email"])
    page.fill("input[name=password]", login["password"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url)
    page.goto(label_stream_url(server.url, project.ls_project_id))
    page.get_by_text("Why Loupe picked this image").wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # a pop-up would open as the stream starts
    screenshot("labeling-view")

    assert page.get_by_text("Labeling Instructions").count() == 0
    height = page.viewport_size["height"]
    for name in CLASSES:
        # A choice reads "<class>[<hotkey>]".
        box = page.get_by_text(re.compile(rf"^{name}(\[\d+\])?$")).first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, f"{name} below the fold"
    image = page.locator("img[src^='blob:']").first.bounding_box()
    assert image["width"] <= 512 and image["height"] <= 512
    # The model's guess for the first pick (see the builders) is chosen already.
    assert page.get_by_role("checkbox", name="scratch").is_checked()
    assert page.get_by_text("margin score 1.000").is_visible()
    assert page.get_by_text("Guidelines").is_visible()
    assert not page.get_by_text("Pointed ears mean cat.").is_visible()  # folded away

"""An expert looks at the batch the loop picked: each picked image shows where the model
looked when hovered (or all at once with the switch), and the labeled items it resembles."""

import pytest

from loupe.accounts.models import Role
from loupe.learning.loop import loop_start
from loupe.learning.models import LearningLoop, RunStatus
from tests.browser.pages import log_in, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALL_IMAGES_DECODED = """sel => Array.from(document.querySelectorAll(sel))
    .every(i => i.complete && i.naturalWidth > 0)"""


def test_the_gallery_shows_where_the_model_looked_and_what_a_pick_resembles(
    live_server, page, screenshot, inspection_project
):
    project = inspection_project
    # Long enough training for the heat to mean something on the screenshot.
    project.train_epochs = 15
    project.save(update_fields=["train_epochs"])
    loop, _ = loop_start(project=project)  # jobs run in-process: train, score, select, explain
    loop = LearningLoop.objects.get(pk=loop.pk)
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    member(project, "vera", Role.EXPERT)

    log_in(page, live_server, "vera")
    # Tall enough for the whole batch: lazy thumbnails load once in view.
    page.set_viewport_size({"width": 1280, "height": 1300})
    page.goto(f"{live_server.url}/projects/{project.slug}/items/?state=queued")
    page.wait_for_selector(".tile .thumb")
    page.wait_for_function(ALL_IMAGES_DECODED, arg=".tile img:not(.saliency)")

    tiles = page.locator(".tile")
    assert tiles.count() == 12
    assert page.locator(".tile .thumb").count() == 12  # every pick has an overlay
    first = tiles.first
    overlay = first.locator("img.saliency")
    assert (
        not overlay.is_visible()
        or overlay.evaluate("i => getComputedStyle(i).visibility") == "hidden"
    )
    assert first.locator(".neighbours .neighbour").count() == 3
    assert first.locator(".neighbours").inner_text().startswith("looks like these labeled")

    first.locator(".thumb").hover()
    page.wait_for_function(ALL_IMAGES_DECODED, arg=".tile:first-child img.saliency")
    assert overlay.evaluate("i => getComputedStyle(i).visibility") == "visible"
    screenshot("gallery-saliency-hover")

    page.mouse.move(0, 0)
    page.check("#show-saliency")
    page.wait_for_function(ALL_IMAGES_DECODED, arg=".tile img")
    visible = page.locator(".tile img.saliency").evaluate_all(
        "imgs => imgs.filter(i => getComputedStyle(i).visibility === 'visible').length"
    )
    assert visible == 12
    screenshot("gallery-saliency-all")

"""A manager reads the overview; an expert follows "Label now" into Label Studio."""

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import Item, ItemState
from loupe.labeling.models import GroundTruth
from tests.browser.pages import log_in, member
from tests.platform.insights.builders import build_world, with_file

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def cell(page, class_name: str, field: str) -> str:
    return page.inner_text(f'tr[data-class="{class_name}"] td[data-field="{field}"]').strip()


def test_a_manager_sees_the_numbers_of_the_database(live_server, page, screenshot):
    world = build_world()
    project = world.project
    for seed, item in enumerate(Item.objects.filter(project=project)):
        with_file(item, seed)
    member(project, "mia", Role.MANAGER)

    log_in(page, live_server, "mia")
    page.click(f"text={project.name}")
    page.wait_for_selector("#class-progress")
    page.wait_for_selector("#drift .empty, #drift table", timeout=20_000)

    labels = GroundTruth.objects.filter(item__project=project, needs_review=False)
    assert page.inner_text("#total-labels") == str(labels.count())
    for state, selector in ((ItemState.QUEUED, "#total-queued"),
                            (ItemState.IN_ANNOTATION, "#total-in-annotation")):  # fmt: skip
        assert page.inner_text(selector) == str(
            Item.objects.filter(project=project, state=state).count()
        )
    for cls in (world.good, world.scratch, world.dent):
        assert cell(page, cls.name, "ground_truth") == str(labels.filter(label_class=cls).count())
    assert cell(page, "scratch", "in_annotation") == "2"
    assert cell(page, "good", "predicted_in_pool") == "6"
    assert "About 8 more labels to find 2 more scratch" in page.inner_text("#class-progress")
    # Charts drew (Chart.js sized its canvases) and the manager has no job controls.
    page.wait_for_function("document.querySelector('#curve-chart').width > 0")
    assert page.locator("#label-now, #start-loop").count() == 0
    screenshot("overview-manager")

    page.click("nav.tabs >> text=Items")
    page.select_option("select[name=order]", "uncertain")
    page.click("text=Filter")
    page.wait_for_selector(".tile .prediction")
    screenshot("gallery-with-predictions")


def test_an_expert_follows_label_now(live_server, page, screenshot, settings):
    world = build_world()
    project = world.project
    project.ls_project_id = 42
    project.save()
    settings.LABEL_STUDIO_URL = "http://labelstudio.test:8080"
    member(project, "eva", Role.EXPERT)
    seen = []

    def label_studio(route):
        seen.append(route.request.url)
        route.fulfill(status=200, content_type="text/html",
                      body="<html><body><h1>Label Studio</h1></body></html>")  # fmt: skip

    page.context.route("http://labelstudio.test:8080/**", label_studio)
    log_in(page, live_server, "eva")
    page.click(f"text={project.name}")
    page.wait_for_selector("#label-now")
    screenshot("overview-expert")

    with page.context.expect_page() as opened:
        page.click("#label-now")
    label_page = opened.value
    label_page.wait_for_load_state()

    assert label_page.url == "http://labelstudio.test:8080/projects/42/data?labeling=1"
    assert seen == [label_page.url]
    assert label_page.inner_text("h1") == "Label Studio"
    assert page.locator("#start-loop").count() == 0

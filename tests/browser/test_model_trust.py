"""In a real browser, the models page draws the reliability diagram of the chosen version
and the learning curve with both baselines and the sentence that compares them."""

import pytest

from loupe.accounts.models import Role
from ml.calibration import calibration_report
from tests.browser.pages import log_in, member
from tests.platform.insights.builders import build_world
from tests.platform.web.test_model_trust import _over_confident_holdout

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DRAWN = """(id) => {
    const canvas = document.getElementById(id);
    if (!canvas || canvas.width === 0) return false;
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) return true;
    return false;
}"""


def test_the_reliability_diagram_and_the_baselines_are_drawn(live_server, page, screenshot):
    world = build_world()
    y, probs = _over_confident_holdout()
    world.v2.metrics = {**world.v2.metrics, "calibration": calibration_report(y, probs)}
    world.v2.save()
    member(world.project, "cal", Role.ENGINEER)
    log_in(page, live_server, "cal")

    page.goto(f"{live_server.url}/projects/{world.project.slug}/models/")
    page.wait_for_function(DRAWN, arg="reliability-chart", timeout=20_000)
    assert "after temperature scaling" in page.inner_text("#ece")
    charts = page.eval_on_selector_all("canvas", "cs => cs.map(c => c.id)")
    curve = next(c for c in charts if c != "reliability-chart")
    page.wait_for_function(DRAWN, arg=curve, timeout=20_000)
    text = page.inner_text("main")
    assert "majority class" in text.lower() and "linear probe" in text.lower()
    screenshot("models-calibration-and-baselines")

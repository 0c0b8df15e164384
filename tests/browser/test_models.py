"""An engineer starts a training run from the models page and watches its progress bar move
to done, with a real Celery worker process doing the work."""

import pytest

from loupe.accounts.models import Role
from loupe.learning.models import LearningLoop, ModelVersion, RunStatus
from tests.browser.pages import log_in, member
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WATCH = """() => {
    const bar = document.querySelector('#jobs progress.loop-progress');
    const row = document.querySelector('#jobs tr.loop');
    if (bar) window.__seen.push(Number(bar.value));
    return row && ['succeeded', 'failed', 'cancelled'].includes(row.dataset.status);
}"""


@pytest.fixture
def worker(inspection_project, settings):
    settings.LOUPE_JOBS_EAGER = False
    process = WorkerProcess()
    yield process
    process.stop()


def test_an_engineer_starts_training_and_watches_it_finish(
    live_server, page, screenshot, inspection_project, worker
):
    project = inspection_project
    member(project, "eli", Role.ENGINEER)
    log_in(page, live_server, "eli")
    page.goto(f"{live_server.url}/projects/{project.slug}/models/")
    assert "No model version yet" in page.inner_text("main")
    screenshot("models-before")

    page.click("#start-loop")
    page.wait_for_selector("#jobs progress.loop-progress")
    page.evaluate("window.__seen = []")
    screenshot("models-running")
    try:
        page.wait_for_function(WATCH, polling=100, timeout=180_000)
    except Exception as exc:
        log = worker.log()[-4000:]
        raise AssertionError(f"the loop did not finish; worker log:\n{log}") from exc

    loop = LearningLoop.objects.get(project=project)
    assert loop.status == RunStatus.SUCCEEDED, loop.error or worker.log()[-3000:]
    seen = page.evaluate("window.__seen")
    # The bar moved: it showed at least one value between start and end, and ended full.
    assert any(0 < v < 100 for v in seen), seen
    assert seen == sorted(seen) and page.inner_text("#jobs .pct") == "100%"
    version = ModelVersion.objects.get(project=project)
    assert f"v{version.version}" in page.inner_text("#jobs")
    # The versions box below filled in too, without a reload.
    page.wait_for_selector("#versions-box #versions tbody tr")
    assert "No model version yet" not in page.inner_text("main")
    assert f"v{version.version}" in page.inner_text("#versions-box")
    screenshot("models-done")

    page.click(f"#jobs >> text=v{version.version}")
    page.wait_for_selector("#confusion")
    assert page.locator("#versions tbody tr").count() == 1
    page.wait_for_function("document.querySelector('#curve-chart').width > 0")
    screenshot("models-version")

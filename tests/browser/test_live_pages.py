"""The pages follow what runs: the overview's loop card while a loop trains, and the imports
page, where an engineer uploads a zip and reads what was imported and what was not."""

import zipfile

import pytest

from loupe.accounts.models import Role
from loupe.learning.models import LearningLoop, RunStatus, TrainingRun
from loupe.projects.services import project_create
from tests.browser.pages import log_in, member
from tests.images import png_bytes
from tests.platform.insights.builders import running_loop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_overview_follows_a_training_loop_until_it_ends(live_server, page, screenshot):
    project = project_create(name="Castings", created_by=None, classes=["good", "dent"])
    member(project, "mia", Role.MANAGER)
    loop = running_loop(project, progress=0.5, elapsed=120)

    log_in(page, live_server, "mia")
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    page.wait_for_selector("#loop-card #loop-step")
    assert page.inner_text("#loop-step b") == "Training"
    assert page.inner_text("#loop-percent") == "40%"
    assert page.inner_text("#loop-eta").endswith("min left")
    assert "The first model is on its way" in page.inner_text("#curve-waiting")
    screenshot("overview-loop-running")

    # The training moves on; the card polls and shows it without a reload.
    TrainingRun.objects.filter(pk=loop.training_run_id).update(progress=0.75)
    page.wait_for_function("document.querySelector('#loop-percent').innerText === '60%'")
    LearningLoop.objects.filter(pk=loop.pk).update(
        status=RunStatus.SUCCEEDED, step=LearningLoop.Step.DONE, finished_at=loop.heartbeat_at
    )
    page.wait_for_selector("#loop-ended", timeout=10_000)
    assert f"Loop #{loop.pk} ended just now" in page.inner_text("#loop-last")
    screenshot("overview-loop-ended")


def test_an_engineer_uploads_a_zip_and_reads_the_rejections(
    live_server, page, screenshot, import_root, tmp_path
):
    project = project_create(name="Welds", created_by=None, classes=["ok", "crack"])
    member(project, "eli", Role.ENGINEER)
    archive = tmp_path / "line-c.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(3):
            z.writestr(f"ok/{i}.png", png_bytes(i))
        z.writestr("crack/9.png", png_bytes(9))
        z.writestr("crack/broken.png", b"\x89PNG not really")
        z.writestr("notes.txt", b"not an image")

    log_in(page, live_server, "eli")
    page.goto(f"{live_server.url}/projects/{project.slug}/imports/")
    assert "No imports yet" in page.inner_text("main")
    page.set_input_files("#upload-form input[type=file]", str(archive))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector('#import-jobs tr.import[data-status="succeeded"]', timeout=30_000)

    row = page.locator("#import-jobs tr.import").first
    assert row.locator('[data-field="imported"]').inner_text() == "4"
    assert row.locator('[data-field="labeled"]').inner_text() == "4"
    assert row.locator('[data-field="rejected"]').inner_text() == "2"
    details = page.inner_text("#import-jobs .import-detail")
    assert "crack/broken.png" in details and "2 files not imported" in details
    screenshot("imports-after-upload")

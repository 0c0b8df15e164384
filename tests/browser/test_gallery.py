"""A person logs in and browses the imported images of their project."""

import pytest

from loupe.accounts.models import Role
from loupe.datasets.services import import_job_create, import_job_run
from loupe.projects.services import project_create
from tests.browser.pages import log_in, member
from tests.images import write_imagefolder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_and_browse_the_gallery(live_server, page, screenshot, import_root):
    project = project_create(name="Castings", created_by=None, classes=["good", "porosity"])
    member(project, "eng", Role.ENGINEER)
    write_imagefolder(import_root / "line", {"good": 5, "porosity": 2, "": 6})
    job = import_job_create(project=project, path=str(import_root / "line"), enqueue=False)
    import_job_run(import_job_id=job.pk)

    log_in(page, live_server, "eng")
    page.click("text=Castings")
    page.click("nav.tabs >> text=Items")
    page.wait_for_selector(".tile img")

    assert page.locator(".tile").count() == 13
    # Every thumbnail shows a decoded image (served through the API with the session).
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.tile img')).every(i => i.naturalWidth > 0)",
        timeout=10_000,
    )
    screenshot("gallery")
    page.select_option("select[name=label]", "porosity")
    page.click("text=Filter")
    assert page.locator(".tile").count() == 2

"""python manage.py loupe_import: in this process, or handed to a worker and followed to its
end (loupe.runs.run_follow) with the same report."""

from io import StringIO

import pytest
from django.core.management import call_command

from loupe.datasets.models import ImportJob, JobStatus
from loupe.projects.services import project_create
from tests.images import write_imagefolder


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.django_db(transaction=True)
def test_the_import_command_reports_the_finished_job_here_or_on_a_worker(import_root, background):
    project = project_create(name="Parts", created_by=None, classes=["ok", "scratch"])
    write_imagefolder(import_root / "set", {"ok": 2, "scratch": 1, "": 3})
    out = StringIO()

    args = ["--background"] if background else []
    call_command("loupe_import", project.slug, str(import_root / "set"), *args, stdout=out)

    job = ImportJob.objects.get(project=project)
    assert job.status == JobStatus.SUCCEEDED and job.imported == 6
    assert (
        f"import {job.pk}: 6 imported (3 with labels), 0 duplicates, 0 rejected" in out.getvalue()
    )

"""Imports through a real Celery worker process on the configured broker (the filesystem
broker by default, Redis in CI)."""

import pytest
from django.conf import settings

from config.celery import app
from loupe import jobs
from loupe.datasets.models import ImportJob, Item, JobStatus
from loupe.datasets.services import import_job_create
from loupe.projects.services import project_create
from tests.images import write_imagefolder
from tests.worker_process import WorkerProcess, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(import_root, settings):
    settings.LOUPE_JOBS_EAGER = False
    process = WorkerProcess()
    yield process
    process.stop()


def finished(job_id):
    job = ImportJob.objects.get(pk=job_id)
    return job if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING) else None


def test_an_import_runs_on_a_real_worker_and_reports_progress(worker, import_root):
    project = project_create(name="Line", created_by=None, classes=["good", "bad"])
    write_imagefolder(import_root / "batch", {"good": 6, "bad": 2, "": 12})

    job = import_job_create(project=project, path=str(import_root / "batch"))
    done = wait_for(lambda: finished(job.pk), timeout=90, worker=worker)

    assert done.status == JobStatus.SUCCEEDED, done.error
    assert (done.imported, done.labeled, done.progress) == (20, 8, 1.0)
    assert Item.objects.filter(project=project).count() == 20
    assert "datasets.import_run" in worker.log()


def test_a_duplicate_delivery_changes_nothing(worker, import_root):
    project = project_create(name="Twice", created_by=None)
    write_imagefolder(import_root / "batch", {"": 5})
    job = import_job_create(project=project, path=str(import_root / "batch"))
    # The same message a second time, as a broker redelivering it would.
    app.send_task(jobs.IMPORT_RUN, kwargs={"import_job_id": job.pk})

    wait_for(lambda: finished(job.pk), timeout=90, worker=worker)
    wait_for(lambda: worker.log().count("succeeded in") >= 2, timeout=60, worker=worker)

    job.refresh_from_db()
    assert (job.imported, job.duplicates, job.processed) == (5, 0, 5)
    assert Item.objects.filter(project=project).count() == 5
    assert settings.CELERY_BROKER_URL  # the broker the worker used

"""The one run lifecycle (loupe.runs), on the rows that follow it: a training run, an import
and a scoring chunk."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loupe.datasets.models import ImportJob, ImportRejection
from loupe.learning.models import ModelVersion, ScoringChunk, ScoringRun, TrainingRun
from loupe.runs import (
    RunCancelled,
    RunStatus,
    run_beat,
    run_claim,
    run_finish,
    run_follow,
    stale_after,
)
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def _abandoned(model, pk: int) -> None:
    """Its worker died: running, no heartbeat for longer than the stale limit."""
    model.objects.filter(pk=pk).update(
        status=RunStatus.RUNNING, heartbeat_at=timezone.now() - stale_after() - timedelta(1)
    )


def test_a_queued_run_is_claimed_once_and_taken_over_only_when_its_worker_stopped_beating():
    run = TrainingRun.objects.create(project=ProjectFactory())

    claimed = run_claim(TrainingRun, run.pk)
    assert claimed.status == RunStatus.RUNNING and claimed.attempts == 1
    assert claimed.started_at is not None and claimed.worker
    assert run_claim(TrainingRun, run.pk) is None  # a live worker owns it

    _abandoned(TrainingRun, run.pk)
    taken = run_claim(TrainingRun, run.pk)
    assert taken.status == RunStatus.RUNNING and taken.attempts == 2
    assert taken.started_at == claimed.started_at

    assert run_finish(taken, RunStatus.SUCCEEDED)
    assert not run_finish(taken, RunStatus.FAILED, error="late")  # already ended
    ended = TrainingRun.objects.get(pk=run.pk)
    assert ended.status == RunStatus.SUCCEEDED and ended.progress == 1.0 and not ended.error
    assert run_claim(TrainingRun, run.pk) is None
    assert run_claim(TrainingRun, run.pk + 1000) is None  # gone


def test_an_import_taken_over_starts_counting_again():
    job = ImportJob.objects.create(project=ProjectFactory(), kind="folder", source_path="/x")
    assert run_claim(ImportJob, job.pk).status == RunStatus.RUNNING
    ImportJob.objects.filter(pk=job.pk).update(processed=7, rejected=1, duplicates=2)
    ImportRejection.objects.create(job=job, path="a.png", reason="not an image")
    forget = lambda pk: ImportRejection.objects.filter(job_id=pk).delete()  # noqa: E731

    assert run_claim(ImportJob, job.pk, on_takeover=forget, processed=0) is None  # still alive
    _abandoned(ImportJob, job.pk)
    taken = run_claim(ImportJob, job.pk, on_takeover=forget, processed=0, rejected=0)

    assert taken.processed == 0 and taken.rejected == 0 and taken.duplicates == 2
    assert not ImportRejection.objects.filter(job=job).exists()
    run_beat(taken, processed=3)  # an import has no cancel flag: beating never raises
    assert ImportJob.objects.get(pk=job.pk).processed == 3
    assert run_finish(taken, RunStatus.FAILED, error="x" * 6000)
    assert len(ImportJob.objects.get(pk=job.pk).error) == 5000


def test_a_chunk_is_claimed_like_any_run():
    project = ProjectFactory()
    version = ModelVersion.objects.create(
        project=project,
        training_run=TrainingRun.objects.create(project=project),
        version=1,
        image_size=32,
    )
    run = ScoringRun.objects.create(project=project, model_version=version)
    chunk = ScoringChunk.objects.create(scoring_run=run, index=0, item_ids=[1, 2])

    assert run_claim(ScoringChunk, chunk.pk).attempts == 1
    assert run_claim(ScoringChunk, chunk.pk) is None
    _abandoned(ScoringChunk, chunk.pk)
    assert run_claim(ScoringChunk, chunk.pk).attempts == 2


def test_a_beat_records_progress_and_a_requested_cancel_stops_the_run():
    run = run_claim(TrainingRun, TrainingRun.objects.create(project=ProjectFactory()).pk)
    run_beat(run, progress=1.5, phase="training")
    stored = TrainingRun.objects.get(pk=run.pk)
    assert stored.progress == 1.0 and stored.phase == "training"

    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    with pytest.raises(RunCancelled):
        run_beat(run, progress=0.5)


def test_following_a_run_shows_each_reading_until_it_ends():
    run = TrainingRun.objects.create(project=ProjectFactory())
    seen = []

    def show(current):
        seen.append(current.status)
        if current.status == RunStatus.QUEUED:  # the worker takes it and finishes
            run_finish(run_claim(TrainingRun, current.pk), RunStatus.FAILED, error="no labels")

    ended = run_follow(run, show=show, seconds=0)

    assert seen == [RunStatus.QUEUED, RunStatus.FAILED]
    assert ended.status == RunStatus.FAILED and ended.error == "no labels"

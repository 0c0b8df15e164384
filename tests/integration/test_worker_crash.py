"""Crash tests with a real worker process: SIGKILL it in the middle of training, and in the
middle of scoring; a new worker finishes the work, nothing is done twice, nothing is missed."""

import pytest

from loupe.datasets.models import Item, ItemState
from loupe.learning.loop import loop_start, runs_resume
from loupe.learning.models import (
    LearningLoop,
    ModelVersion,
    Prediction,
    RunStatus,
    ScoringChunk,
    TrainingRun,
)
from tests.worker_process import WorkerProcess, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Many small chunks, so the kill lands while scoring is under way.
# Every epoch is trained, so the kill lands while training is under way.
WORKER_ENV = {
    "LOUPE_STALE_AFTER_SECONDS": "2",
    "LOUPE_SCORING_CHUNK_SIZE": "2",
    "LOUPE_EARLY_STOPPING_PATIENCE": "0",
}


@pytest.fixture
def real_workers(settings):
    settings.LOUPE_JOBS_EAGER = False
    settings.LOUPE_STALE_AFTER_SECONDS = 2
    started = []

    def start():
        worker = WorkerProcess(extra_env=WORKER_ENV)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.stop()


def loop_done(loop_id):
    loop = LearningLoop.objects.get(pk=loop_id)
    return loop if loop.status not in (RunStatus.QUEUED, RunStatus.RUNNING) else None


def finish_with_new_worker(real_workers, loop):
    """A new worker, and what beat does every minute after a crash (here every second):
    resend the abandoned work until the loop is done."""
    worker = real_workers()

    def resumed_and_done():
        runs_resume()
        return loop_done(loop.pk)

    return wait_for(resumed_and_done, timeout=300, interval=1.0, worker=worker)


def test_sigkill_during_training_then_a_new_worker_finishes_with_one_model_version(
    inspection_project, real_workers
):
    inspection_project.train_epochs = 60
    inspection_project.save()
    first = real_workers()
    loop, _ = loop_start(project=inspection_project)

    def training_underway():
        run = TrainingRun.objects.get(pk=loop.training_run_id)
        return run.status == RunStatus.RUNNING and run.phase == "training"

    wait_for(training_underway, timeout=180, interval=0.05, worker=first)
    first.kill()
    assert TrainingRun.objects.get(pk=loop.training_run_id).status == RunStatus.RUNNING

    done = finish_with_new_worker(real_workers, loop)

    assert done.status == RunStatus.SUCCEEDED, done.error
    run = TrainingRun.objects.get(pk=loop.training_run_id)
    assert run.attempts == 2
    assert ModelVersion.objects.filter(project=inspection_project).count() == 1
    assert Item.objects.filter(project=inspection_project, state=ItemState.QUEUED).count() == 12


def test_sigkill_during_scoring_leaves_no_item_scored_twice_or_missed(
    inspection_project, real_workers
):
    first = real_workers()
    loop, _ = loop_start(project=inspection_project)
    pool = set(
        Item.objects.filter(project=inspection_project, state=ItemState.UNLABELED).values_list(
            "id", flat=True
        )
    )

    def scoring_underway():
        current = LearningLoop.objects.get(pk=loop.pk)
        return (
            current.scoring_run_id
            and ScoringChunk.objects.filter(
                scoring_run_id=current.scoring_run_id, status=RunStatus.SUCCEEDED
            ).exists()
        )

    wait_for(scoring_underway, timeout=180, worker=first)
    first.kill()
    current = LearningLoop.objects.get(pk=loop.pk)
    chunks = ScoringChunk.objects.filter(scoring_run_id=current.scoring_run_id)
    assert chunks.exclude(status=RunStatus.SUCCEEDED).exists(), "killed before the end"

    done = finish_with_new_worker(real_workers, loop)

    assert done.status == RunStatus.SUCCEEDED, done.error
    scored = list(
        Prediction.objects.filter(scoring_run_id=current.scoring_run_id).values_list(
            "item_id", flat=True
        )
    )
    assert len(scored) == len(set(scored)), "an item was scored twice"
    assert set(scored) == pool, "an item was missed"
    assert not chunks.exclude(status=RunStatus.SUCCEEDED).exists()

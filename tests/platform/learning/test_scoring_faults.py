"""A loop whose scoring meets a fault: a chunk that cannot be written, a broker that is down
when the loop should move on, a worker gone before it told the loop. The loop ends (with the
error) or moves on; no chunk is reported otherwise than it went."""

import contextlib
import errno
from datetime import timedelta

import pytest
from django.utils import timezone

from loupe import jobs
from loupe.learning import loop as loop_module
from loupe.learning import scoring
from loupe.learning.loop import loop_start, runs_resume
from loupe.learning.models import (
    LearningLoop,
    ModelVersion,
    Prediction,
    RunStatus,
    ScoringChunk,
)
from loupe.runs import stale_after

pytestmark = pytest.mark.django_db


class BrokerDown(Exception):
    """What sending a message raises while the broker is unreachable."""


@pytest.fixture
def scoring_loop(inspection_project, django_capture_on_commit_callbacks, settings):
    """A trained version, and a new loop at its scoring step with every chunk queued."""
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = loop_start(project=inspection_project)
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED, first.error
    Prediction.objects.all().delete()
    settings.LOUPE_SCORING_CHUNK_SIZE = 10
    version = ModelVersion.objects.get(project=inspection_project)
    run = scoring.scoring_run_create(model_version=version, enqueue=False)
    now = timezone.now()
    return LearningLoop.objects.create(
        project=inspection_project,
        status=RunStatus.RUNNING,
        step=LearningLoop.Step.SCORE,
        training_run=version.training_run,
        scoring_run=run,
        started_at=now,
        heartbeat_at=now,
    )


def score_every_chunk(loop: LearningLoop, *, tolerate=()) -> None:
    for chunk_id in loop.scoring_run.chunks.order_by("index").values_list("id", flat=True):
        with contextlib.suppress(*tolerate):
            loop_module.loop_score_chunk(chunk_id=chunk_id)  # what the chunk's task runs


def make_stale(loop: LearningLoop) -> None:
    LearningLoop.objects.filter(pk=loop.pk).update(
        heartbeat_at=timezone.now() - stale_after() - timedelta(seconds=1)
    )


def test_a_chunk_that_cannot_be_written_ends_the_loop_with_the_error(scoring_loop, monkeypatch):
    def disk_full(**kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(scoring, "file_replace", disk_full)

    score_every_chunk(scoring_loop)

    scoring_loop.refresh_from_db()
    assert scoring_loop.scoring_run.status == RunStatus.FAILED
    assert scoring_loop.status == RunStatus.FAILED
    assert "No space left on device" in scoring_loop.error


def test_the_last_chunk_stays_succeeded_when_the_broker_is_down_and_the_loop_moves_on_later(
    scoring_loop, monkeypatch, django_capture_on_commit_callbacks
):
    send = jobs.enqueue

    def broker_down(task_name, **kwargs):
        if task_name == jobs.SELECT:
            raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        send(task_name, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(jobs, "enqueue", broker_down)
        score_every_chunk(scoring_loop, tolerate=(BrokerDown,))

    run = scoring_loop.scoring_run
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert not ScoringChunk.objects.filter(scoring_run=run).exclude(status=RunStatus.SUCCEEDED)
    assert Prediction.objects.filter(scoring_run=run).count() == run.total_items

    make_stale(scoring_loop)  # the broker is back; beat's resume sends the selection
    with django_capture_on_commit_callbacks(execute=True):
        runs_resume()
    scoring_loop.refresh_from_db()
    assert scoring_loop.status == RunStatus.SUCCEEDED and scoring_loop.selection_round_id


def test_the_resume_moves_on_a_loop_whose_scoring_ended_without_telling_it(
    scoring_loop, monkeypatch, django_capture_on_commit_callbacks
):
    with monkeypatch.context() as patched:  # the worker died right after the last chunk
        patched.setattr(loop_module, "loop_on_scoring_finished", lambda **kwargs: None)
        score_every_chunk(scoring_loop)
    scoring_loop.refresh_from_db()
    assert scoring_loop.scoring_run.status == RunStatus.SUCCEEDED
    assert scoring_loop.step == LearningLoop.Step.SCORE

    with django_capture_on_commit_callbacks(execute=True):
        runs_resume()

    scoring_loop.refresh_from_db()
    assert scoring_loop.status == RunStatus.SUCCEEDED and scoring_loop.selection_round_id

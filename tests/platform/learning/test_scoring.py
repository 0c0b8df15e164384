"""Scoring a pool in chunks: what the predictions say, one task taking its run's queued
chunks, and duplicate messages changing nothing."""

import numpy as np
import pytest
from django.utils import timezone

from loupe.datasets.models import Item, ItemState
from loupe.learning.loop import loop_start
from loupe.learning.models import ModelVersion, Prediction, RunStatus, ScoringChunk, ScoringRun
from loupe.learning.scoring import scoring_arrays, scoring_chunk_execute, scoring_run_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(inspection_project, django_capture_on_commit_callbacks):
    """A trained model version whose pool predictions are wiped, so it can score again."""
    with django_capture_on_commit_callbacks(execute=True):
        loop, _ = loop_start(project=inspection_project)
    loop.refresh_from_db()
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    Prediction.objects.all().delete()
    return ModelVersion.objects.get(project=inspection_project)


def pool_ids(project) -> set[int]:
    return set(
        Item.objects.filter(project=project, state=ItemState.UNLABELED).values_list("id", flat=True)
    )


def test_predictions_agree_with_the_probabilities_of_the_run(version, settings):
    settings.LOUPE_SCORING_CHUNK_SIZE = 25
    run = scoring_run_create(model_version=version, enqueue=False)
    for chunk_id in run.chunks.order_by("index").values_list("id", flat=True):
        scoring_chunk_execute(chunk_id=chunk_id)

    run.refresh_from_db()
    arrays = scoring_arrays(run=run)
    by_item = dict(zip(arrays.item_ids.tolist(), arrays.probs, strict=True))
    names = {c.pk: c.name for c in version.project.classes.all()}
    predictions = list(Prediction.objects.filter(scoring_run=run))
    assert run.status == RunStatus.SUCCEEDED and run.scored_items == len(predictions)
    assert {p.item_id for p in predictions} == set(by_item)
    for prediction in predictions:
        probs = by_item[prediction.item_id]
        top, second = np.sort(probs)[::-1][:2]
        assert prediction.probs == [round(float(p), 5) for p in probs]
        assert prediction.confidence == pytest.approx(top, abs=1e-6)
        assert prediction.uncertainty == pytest.approx(1.0 - (top - second), abs=1e-6)
        assert names[prediction.predicted_class_id] == version.class_names[int(probs.argmax())]
        assert prediction.model_version_id == version.pk and prediction.created_at is not None


def test_one_task_scores_the_queued_chunks_of_its_run_and_their_messages_do_nothing(
    version, settings
):
    settings.LOUPE_SCORING_CHUNK_SIZE = 10
    run = scoring_run_create(model_version=version, enqueue=False)
    chunk_ids = list(run.chunks.order_by("index").values_list("id", flat=True))
    assert len(chunk_ids) > 2

    first = scoring_chunk_execute(chunk_id=chunk_ids[0])
    written = Prediction.objects.count()
    for chunk_id in chunk_ids:  # the messages of the chunks it took, delivered afterwards
        scoring_chunk_execute(chunk_id=chunk_id)

    run.refresh_from_db()
    assert first.pk == chunk_ids[0] and first.status == RunStatus.SUCCEEDED
    assert run.status == RunStatus.SUCCEEDED and run.chunks_done == len(chunk_ids)
    assert not ScoringChunk.objects.filter(scoring_run=run).exclude(status=RunStatus.SUCCEEDED)
    scored = list(Prediction.objects.filter(scoring_run=run).values_list("item_id", flat=True))
    assert written == len(scored) == len(set(scored))
    assert set(scored) == pool_ids(version.project)


def test_a_chunk_scored_again_keeps_the_first_predictions(version, settings):
    settings.LOUPE_SCORING_CHUNK_SIZE = 1000
    run = scoring_run_create(model_version=version, enqueue=False)
    chunk = run.chunks.get()
    scoring_chunk_execute(chunk_id=chunk.pk)
    before = dict(Prediction.objects.values_list("item_id", "id"))
    # A worker died after writing but before its chunk was marked: the chunk runs again.
    ScoringChunk.objects.filter(pk=chunk.pk).update(status=RunStatus.QUEUED)
    ScoringRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)

    scoring_chunk_execute(chunk_id=chunk.pk)

    assert dict(Prediction.objects.values_list("item_id", "id")) == before


def test_a_cancelled_run_stops_taking_chunks(version, settings):
    settings.LOUPE_SCORING_CHUNK_SIZE = 10
    run = scoring_run_create(model_version=version, enqueue=False)
    chunk_ids = list(run.chunks.order_by("index").values_list("id", flat=True))
    ScoringRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, cancel_requested=True)

    scoring_chunk_execute(chunk_id=chunk_ids[0])

    assert ScoringChunk.objects.filter(scoring_run=run, status=RunStatus.QUEUED).count() == (
        len(chunk_ids) - 1
    )


def test_a_run_sends_one_message_and_each_task_one_more_for_another_worker(
    version, settings, monkeypatch
):
    from loupe.learning import scoring

    sent = []
    monkeypatch.setattr(scoring.jobs, "enqueue", lambda name, **kw: sent.append(kw["chunk_id"]))
    settings.LOUPE_SCORING_CHUNK_SIZE = 10
    settings.LOUPE_JOBS_EAGER = False

    run = scoring_run_create(model_version=version)
    chunk_ids = list(run.chunks.order_by("index").values_list("id", flat=True))
    assert sent == chunk_ids[:1]

    scoring_chunk_execute(chunk_id=sent[0])
    # It asked for a second worker (for the next queued chunk), then scored every chunk.
    assert sent == chunk_ids[:2]
    assert not ScoringChunk.objects.filter(scoring_run=run).exclude(status=RunStatus.SUCCEEDED)

    scoring_chunk_execute(chunk_id=sent[1])  # that message, once no chunk is left
    assert sent == chunk_ids[:2]


def test_a_message_whose_chunk_is_taken_scores_another_queued_chunk(version, settings):
    settings.LOUPE_SCORING_CHUNK_SIZE = 10
    run = scoring_run_create(model_version=version, enqueue=False)
    chunk_ids = list(run.chunks.order_by("index").values_list("id", flat=True))
    # Another worker holds the first chunk (its heartbeat is fresh).
    ScoringChunk.objects.filter(pk=chunk_ids[0]).update(
        status=RunStatus.RUNNING, heartbeat_at=timezone.now()
    )
    ScoringRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)

    scoring_chunk_execute(chunk_id=chunk_ids[0])

    statuses = dict(run.chunks.values_list("id", "status"))
    assert statuses.pop(chunk_ids[0]) == RunStatus.RUNNING
    assert set(statuses.values()) == {RunStatus.SUCCEEDED}


def test_a_long_task_hands_the_rest_of_the_run_over_to_a_new_message(
    version, settings, monkeypatch
):
    from loupe.learning import scoring

    sent = []
    monkeypatch.setattr(scoring.jobs, "enqueue", lambda name, **kw: sent.append(kw["chunk_id"]))
    monkeypatch.setattr(scoring, "TAKE_MORE_SECONDS", -1)  # always past its time
    settings.LOUPE_SCORING_CHUNK_SIZE = 10
    settings.LOUPE_JOBS_EAGER = False
    run = scoring_run_create(model_version=version, enqueue=False)
    chunk_ids = list(run.chunks.order_by("index").values_list("id", flat=True))

    scoring_chunk_execute(chunk_id=chunk_ids[0])

    assert run.chunks.filter(status=RunStatus.SUCCEEDED).count() == 1
    # One message for another worker when it started, one to go on after it stopped.
    assert sent == [chunk_ids[1], chunk_ids[1]]

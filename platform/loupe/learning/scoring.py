"""Scoring the pool with a model version, sharded into chunks. Each chunk is one claim and one
bulk write, so workers on several machines share a pool; a chunk is claimed like a run, so a
redelivered chunk never writes twice, and the last chunk to finish closes the run."""

import logging
import time
from functools import lru_cache

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from loupe import jobs
from loupe.datasets.models import Item, ItemState, Split
from loupe.datasets.storage import file_replace
from loupe.learning.models import (
    ModelVersion,
    RunStatus,
    ScoringChunk,
    ScoringRun,
)
from loupe.runs import run_claim, run_finish, stale_after
from loupe.tasktypes import get_task_type
from ml.artifacts import SUFFIX, ItemArrays, concat, load, save

logger = logging.getLogger(__name__)

# How long one task keeps taking its run's queued chunks before it lets the broker hand the
# worker its next message (other projects' work, other task kinds).
TAKE_MORE_SECONDS = 600


def scoring_run_create(*, model_version: ModelVersion, enqueue: bool = True) -> ScoringRun:
    """Queues the scoring of every pool item this model version has not scored yet."""
    project = model_version.project
    item_ids = list(
        Item.objects.filter(project=project, split=Split.POOL, state=ItemState.UNLABELED)
        .exclude(predictions__model_version=model_version)
        .order_by("id")
        .values_list("id", flat=True)
    )
    size = settings.LOUPE_SCORING_CHUNK_SIZE
    with transaction.atomic():
        run = ScoringRun.objects.create(
            project=project,
            model_version=model_version,
            total_items=len(item_ids),
            chunks_total=(len(item_ids) + size - 1) // size,
            phase="queued",
        )
        ScoringChunk.objects.bulk_create(
            ScoringChunk(scoring_run=run, index=i, item_ids=item_ids[start : start + size])
            for i, start in enumerate(range(0, len(item_ids), size))
        )
        if not item_ids:
            ScoringRun.objects.filter(pk=run.pk).update(
                status=RunStatus.SUCCEEDED,
                progress=1.0,
                phase="nothing to score",
                finished_at=timezone.now(),
            )
            run.refresh_from_db()
        elif enqueue:
            # One message; each task that finds more queued chunks sends one more, so every
            # idle worker joins in (see scoring_chunk_execute).
            jobs.enqueue(jobs.SCORE_CHUNK, chunk_id=run.chunks.get(index=0).pk)
    return run


def scoring_chunks_pending(*, run: ScoringRun) -> list[int]:
    """Chunks that need their message sent again: running with a dead worker, and, when the
    whole run has made no progress for a while (its messages were lost), the queued ones.
    A queued backlog that workers are still draining is left alone."""
    stale = timezone.now() - stale_after()
    chunks = run.chunks.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
    last_progress = run.heartbeat_at or run.created_at
    if last_progress < stale:
        chunks = chunks | run.chunks.filter(status=RunStatus.QUEUED)
    return list(chunks.values_list("id", flat=True))


def _claim_chunk(chunk_id: int) -> ScoringChunk | None:
    """A chunk is claimed like any run (loupe.runs); its run starts with its first chunk."""
    if run_claim(ScoringChunk, chunk_id) is None:
        return None
    now = timezone.now()
    chunk = ScoringChunk.objects.select_related("scoring_run__model_version").get(pk=chunk_id)
    ScoringRun.objects.filter(pk=chunk.scoring_run_id).update(heartbeat_at=now)
    if chunk.scoring_run.status == RunStatus.QUEUED:
        ScoringRun.objects.filter(pk=chunk.scoring_run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, phase="scoring"
        )
    return chunk


def version_model(*, model_version: ModelVersion):
    """The version's network with its trained weights, on the device, in eval mode."""
    return _built(
        model_version.weights.name,
        model_version.model_kind,
        model_version.image_size,
        len(model_version.class_names),
        model_version.project.task_type,
    )


def _built(weights_name: str, kind: str, size: int, classes: int, task_type: str):
    """Built and loaded by the task type's ml spec (`ml.tasks`)."""
    from ml.device import pick_device

    spec = get_task_type(task_type).ml_spec()
    model = spec.build_model(kind, num_classes=classes, image_size=size)
    with default_storage.open(weights_name, "rb") as handle:
        model = spec.load_weights(model, handle.read())
    return model.to(pick_device()).eval()


@lru_cache(maxsize=4)
def _load_model(
    model_version_id: int, weights_name: str, kind: str, size: int, classes: int, task_type: str
):
    """Loaded once per worker process and version: chunks of one run reuse it."""
    return _built(weights_name, kind, size, classes, task_type)


def scoring_chunk_execute(*, chunk_id: int) -> ScoringChunk | None:
    """Scores the chunk, or another queued chunk of its run when that one is taken, and
    writes its predictions in bulk; safe to run twice.

    A run's chunks are a work list in the database: the task goes on claiming and scoring
    the run's queued chunks (for up to TAKE_MORE_SECONDS, then it hands over to a new
    message), and sends one message for another worker to join in. A message per chunk
    would cost a broker round trip per chunk (up to a second with the filesystem broker's
    polling, a third of a worker's scoring time) and leave as many empty messages behind."""
    chunk = _claim_chunk(chunk_id)
    if chunk is None:
        run_id = (
            ScoringChunk.objects.filter(pk=chunk_id)
            .values_list("scoring_run_id", flat=True)
            .first()
        )
        chunk = _claim_next_chunk(run_id) if run_id else None
    if chunk is None:
        return ScoringChunk.objects.filter(pk=chunk_id).first()
    run_id, started = chunk.scoring_run_id, time.monotonic()
    _send_for_queued_chunk(run_id)  # another worker joins, if one is free
    while chunk is not None and _execute_claimed(chunk):
        if time.monotonic() - started > TAKE_MORE_SECONDS:
            _send_for_queued_chunk(run_id)  # let other messages through, then go on
            break
        chunk = _claim_next_chunk(run_id)
    return ScoringChunk.objects.filter(pk=chunk_id).first()


def _send_for_queued_chunk(run_id: int) -> None:
    if settings.LOUPE_JOBS_EAGER:
        return  # in-process, this task already takes every queued chunk
    queued = _queued_chunks(run_id).values_list("id", flat=True).first()
    if queued is not None:
        jobs.enqueue(jobs.SCORE_CHUNK, chunk_id=queued)


def _execute_claimed(chunk: ScoringChunk) -> bool:
    """Scores a claimed chunk; False when it failed (and failed its run). Whether the run
    has ended is read from it by the loop, once the step returns (`loop.loop_score_chunk`)."""
    run = chunk.scoring_run
    try:
        _score_chunk(chunk, run)
    except Exception as exc:
        logger.exception("scoring chunk %s failed", chunk.pk)
        ScoringChunk.objects.filter(pk=chunk.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED
        )
        run_finish(run, RunStatus.FAILED, error=f"chunk {chunk.index}: {exc}", phase="failed")
        return False
    return True


def _queued_chunks(run_id: int):
    return ScoringChunk.objects.filter(
        scoring_run_id=run_id, scoring_run__status=RunStatus.RUNNING, status=RunStatus.QUEUED
    ).order_by("index")


def _claim_next_chunk(run_id: int) -> ScoringChunk | None:
    """The first queued chunk of a running run that this worker manages to claim."""
    for chunk_id in _queued_chunks(run_id).values_list("id", flat=True)[:8]:
        chunk = _claim_chunk(chunk_id)
        if chunk is not None:
            return chunk
    return None


def version_temperature(*, model_version: ModelVersion) -> float:
    """The temperature fitted on the holdout when the version was trained (see
    training.holdout_calibration); 1 for a version trained without one."""
    calibration = (model_version.metrics or {}).get("calibration") or {}
    return float(calibration.get("temperature") or 1.0)


def _score_chunk(chunk: ScoringChunk, run: ScoringRun) -> bool:
    """Scores and writes one chunk; True when it was the run's last, closing the run."""
    from ml.calibration import apply_temperature

    started = time.perf_counter()
    version = run.model_version
    task_type = get_task_type(run.project.task_type)
    model = _load_model(
        version.pk,
        version.weights.name,
        version.model_kind,
        version.image_size,
        len(version.class_names),
        task_type.name,
    )
    rows = list(
        Item.objects.filter(pk__in=chunk.item_ids)
        .order_by("id")
        .values_list("id", "file", "sha256", "extra_files")
    )
    x = task_type.item_inputs(
        files=[r[1] for r in rows],
        extra_files=[tuple(r[3] or ()) for r in rows],
        cache_keys=[r[2] for r in rows],
        image_size=version.image_size,
    )
    # BALD needs MC-dropout draws; other strategies do not pay for them.
    from loupe.projects.selectors import strategy_name
    from ml.strategies import required_inputs

    wants_mc = "mc_probs" in required_inputs(strategy_name(run.project))
    output = task_type.ml_spec().predict(
        model,
        x,
        batch_size=settings.LOUPE_SCORING_BATCH_SIZE,
        mc_samples=settings.LOUPE_MC_SAMPLES if wants_mc else 0,
    )
    # The one place the version's temperature applies: predictions, selection and the
    # reasons experts read all see calibrated probabilities; the model's own are kept.
    temperature = version_temperature(model_version=version)
    probs = apply_temperature(output.probs, temperature)
    ids = np.array([r[0] for r in rows], dtype=np.int64)

    artifact = f"scoring/{run.project.slug}/run-{run.pk}/chunk-{chunk.index:05d}{SUFFIX}"
    scored = ItemArrays(
        item_ids=ids,
        scores=output.scores,
        extras=output.extras,
        probs=probs,
        raw_probs=output.probs,
        embeddings=output.embeddings,
        mc_probs=None
        if output.mc_probs is None
        else apply_temperature(output.mc_probs, temperature),
    )
    file_replace(name=artifact, content=save(scored))

    with transaction.atomic():
        # Conflicts are ignored: an item already scored by this version (a redelivered
        # chunk whose first attempt died after writing) keeps its one prediction.
        _predictions_insert(version=version, run=run, item_ids=ids, probs=probs, scored=scored)
        updated = ScoringChunk.objects.filter(pk=chunk.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.SUCCEEDED,
            artifact=artifact,
            seconds=time.perf_counter() - started,
        )
        if updated:
            ScoringRun.objects.filter(pk=run.pk).update(
                chunks_done=F("chunks_done") + 1,
                scored_items=F("scored_items") + len(ids),
                heartbeat_at=timezone.now(),
            )
    run.refresh_from_db()
    ScoringRun.objects.filter(pk=run.pk).update(progress=run.chunks_done / max(1, run.chunks_total))
    # Only one chunk wins the transition to succeeded, so the loop advances once.
    return run.chunks_done >= run.chunks_total and run_finish(
        run, RunStatus.SUCCEEDED, phase="done"
    )


def _predictions_insert(
    *,
    version: ModelVersion,
    run: ScoringRun,
    item_ids: np.ndarray,
    probs: np.ndarray,
    scored: ItemArrays | None = None,
) -> None:
    """The chunk's prediction rows, as the project's task type writes them."""
    get_task_type(run.project.task_type).predictions_insert(
        version=version, run=run, item_ids=item_ids, probs=probs, scored=scored
    )


def scoring_arrays(*, run: ScoringRun) -> ItemArrays:
    """Item ids, probs (calibrated by the version's temperature), raw_probs (the model's
    own, absent for runs scored before they were kept), embeddings and, when the strategy
    asked for them, MC draws of a finished run, read back from its chunk artifacts."""
    parts = []
    for name in run.chunks.order_by("index").values_list("artifact", flat=True):
        if name:
            with default_storage.open(name, "rb") as handle:
                parts.append(load(handle))
    if not parts:
        return ItemArrays.empty(num_classes=len(run.model_version.class_names))
    return concat(parts)

"""Writes for items and imports. An import streams its source one file at a time, validates
each file, stores it content-addressed and inserts items in bulk batches; bad entries become
rejections with a reason while the rest is imported."""

import hashlib
import io
import logging
import os
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import reset_queries, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from loupe import jobs
from loupe.bulk import db_value, insert_rows
from loupe.datasets import sources
from loupe.datasets.models import (
    ITEM_IMPORT_COLUMNS,
    ImportJob,
    ImportKind,
    ImportRejection,
    Item,
    ItemState,
    JobStatus,
    Split,
)
from loupe.datasets.storage import file_delete, file_store, item_file_name
from loupe.datasets.uploads import upload_too_large_error
from loupe.errors import ApplicationError
from loupe.labeling.holdout import HoldoutAssigner
from loupe.labeling.models import Decision, GroundTruth
from loupe.projects.models import LabelClass, Project
from loupe.runs import run_beat, run_claim, run_finish, stale_after
from loupe.tasktypes import task_type_of

logger = logging.getLogger(__name__)

IMPORT_THREADS = 4

ProgressCallback = Callable[[ImportJob], None]
# Leading bytes of the formats Pillow reads: a file that starts like an image but does not
# open is corrupt, not "some other file".
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")


@dataclass
class _Accepted:
    sha256: str
    file_name: str
    created_file: bool
    original_name: str
    size_bytes: int
    width: int
    height: int
    image_format: str
    label_class_id: int | None
    metadata: dict


def import_job_create(
    *,
    project: Project,
    path: str,
    created_by: AbstractUser | None = None,
    source_tag: str = "",
    holdout_fraction: float | None = None,
    kind: str | None = None,
    enqueue: bool = True,
) -> ImportJob:
    """Checks a server-side path against the allowed import roots and queues an import job.
    Loupe's upload and media folders are never such a path, even inside a root: an uploaded
    archive belongs to the project that sent it and is imported only by the job its upload
    created."""
    real = _path_source_resolve(path)
    if not real.exists():
        raise ApplicationError(f"'{path}' does not exist.", code="not_found", status=404)
    return _job_create(
        project=project,
        real=real,
        created_by=created_by,
        source_tag=source_tag,
        holdout_fraction=holdout_fraction,
        kind=kind,
        enqueue=enqueue,
    )


def _path_source_resolve(path: str | Path) -> Path:
    return sources.resolve_allowed(
        path,
        settings.LOUPE_IMPORT_ROOTS,
        refused=_refused_folders(),
        base_dir=settings.LOUPE_REPO_DIR,
    )


def _refused_folders() -> list[str]:
    """Loupe's own folders are never read by an import, even inside an import root: the
    uploads (each project's archives are its own) and the media (every project's items)."""
    return [str(settings.LOUPE_UPLOAD_DIR), str(settings.MEDIA_ROOT)]


def _job_create(
    *,
    project: Project,
    real: Path,
    created_by: AbstractUser | None,
    source_tag: str,
    holdout_fraction: float | None,
    kind: str | None,
    enqueue: bool,
) -> ImportJob:
    kind = kind or sources.detect_kind(real)
    if kind not in ImportKind.values:
        raise ApplicationError(f"Unknown import kind '{kind}'.")
    if holdout_fraction is None:
        # Seed labels join the project's fixed holdout by the same rule as the experts' labels.
        holdout_fraction = project.holdout_fraction
    if not 0.0 <= holdout_fraction < 1.0:
        raise ApplicationError("holdout_fraction must be in [0, 1).")
    job = ImportJob.objects.create(
        project=project,
        created_by=created_by,
        kind=kind,
        source_path=str(real),
        source_tag=source_tag or real.stem,
        holdout_fraction=holdout_fraction,
    )
    if enqueue:
        jobs.enqueue(jobs.IMPORT_RUN, import_job_id=job.pk)
    return job


def _project_upload_dir(project_id: int) -> Path:
    """`<LOUPE_UPLOAD_DIR>/<project id>`: the only folder a project's uploads are read from."""
    return Path(os.path.realpath(settings.LOUPE_UPLOAD_DIR)) / str(project_id)


def import_upload_save(
    *,
    project: Project,
    uploaded_file,
    created_by: AbstractUser | None = None,
    source_tag: str = "",
    holdout_fraction: float | None = None,
    enqueue: bool = True,
) -> ImportJob:
    """Stores an uploaded zip archive (streamed in chunks) in the project's own upload folder
    and queues its import. An archive over LOUPE_MAX_UPLOAD_BYTES is refused (413); a file
    whose import cannot be queued is removed at once, any other once its import finishes."""
    if not uploaded_file.name.lower().endswith(".zip"):
        raise ApplicationError("Upload a .zip archive (ImageFolder layout or flat).")
    limit = settings.LOUPE_MAX_UPLOAD_BYTES
    if (uploaded_file.size or 0) > limit:
        raise upload_too_large_error()
    folder = _project_upload_dir(project.pk)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex}.zip"
    try:
        written = 0
        with open(target, "wb") as handle:
            for chunk in uploaded_file.chunks():
                written += len(chunk)
                if written > limit:
                    raise upload_too_large_error()
                handle.write(chunk)
        return _job_create(
            project=project,
            real=target,
            created_by=created_by,
            source_tag=source_tag or Path(uploaded_file.name).stem,
            holdout_fraction=holdout_fraction,
            kind=ImportKind.ZIP,
            enqueue=enqueue,
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _upload_of(job: ImportJob) -> Path | None:
    """The job's source when it is an archive uploaded to the job's own project."""
    path = Path(job.source_path)
    if job.kind == ImportKind.ZIP and path.parent == _project_upload_dir(job.project_id):
        return path
    return None


def _source_check(job: ImportJob) -> Path:
    """The job's source, checked again when it runs: an upload only from its project's own
    folder, any other path only inside the import roots (and outside Loupe's own folders)."""
    if (upload := _upload_of(job)) is not None:
        if not upload.exists():
            raise ApplicationError("The uploaded archive no longer exists; upload it again.")
        return upload
    real = Path(os.path.realpath(job.source_path))
    uploads = Path(os.path.realpath(settings.LOUPE_UPLOAD_DIR))
    if real == uploads or uploads in real.parents:
        raise ApplicationError("This import's archive was not uploaded to this project.")
    # Otherwise a path import, checked as when it was queued (roots may have changed since).
    try:
        path = _path_source_resolve(job.source_path)
    except ApplicationError as exc:
        roots = ", ".join(exc.extra.get("allowed_roots", [])) or "none"
        raise ApplicationError(
            f"This import's source is outside the allowed import folders ({roots})."
        ) from exc
    if not path.exists():
        raise ApplicationError(f"'{job.source_path}' no longer exists.")
    return path


def _claim(job_id: int) -> ImportJob | None:
    """Moves the job from queued (or abandoned running) to running. Returns None when another
    worker owns it or it has finished, so a redelivered task does nothing twice.

    A job taken over from a dead worker reads its source again from the start: the counts of
    what it read go back to zero (its rejections too, found again), while `imported` and
    `labeled` keep the rows its committed batches wrote, which `_flush` does not count twice."""
    return run_claim(
        ImportJob,
        job_id,
        on_takeover=lambda pk: ImportRejection.objects.filter(job_id=pk).delete(),
        processed=0,
        duplicates=0,
        rejected=0,
    )


def import_jobs_resume() -> list[int]:
    """Re-sends the imports whose message was lost with a worker: running without a heartbeat
    for LOUPE_STALE_AFTER_SECONDS, or still queued that long after they were created. (With
    Redis an unacknowledged message comes back only after its visibility timeout; with the
    filesystem broker never.) Harmless for a job another worker owns: `_claim` leaves it."""
    stale = timezone.now() - stale_after()
    ids = list(
        ImportJob.objects.filter(
            Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
            | Q(status=JobStatus.QUEUED, created_at__lt=stale)
        ).values_list("pk", flat=True)
    )
    for job_id in ids:
        jobs.enqueue(jobs.IMPORT_RUN, import_job_id=job_id)
    return ids


def import_job_run(*, import_job_id: int, progress: ProgressCallback | None = None) -> ImportJob:
    """Runs a queued import to the end. Safe to run twice: a finished or owned job is left
    alone, and re-importing content already in the project is counted as duplicates."""
    job = _claim(import_job_id)
    if job is None:
        return ImportJob.objects.get(pk=import_job_id)
    succeeded = False
    try:
        _run(job, progress)
    except ApplicationError as exc:
        run_finish(job, JobStatus.FAILED, error=exc.message)
    except Exception as exc:  # keep the message for the user; the traceback goes to the log
        logger.exception("import %s failed", job.pk)
        run_finish(job, JobStatus.FAILED, error=f"Unexpected error: {exc}")
    else:
        run_finish(job, JobStatus.SUCCEEDED)
        succeeded = True
    # An uploaded archive is read by this job only; finished either way, it goes. (A worker
    # killed mid-import leaves it for the worker that takes the job over.)
    if (upload := _upload_of(job)) is not None:
        upload.unlink(missing_ok=True)
    if succeeded:
        # A project with a pool and a Label Studio link may now get its first batch.
        jobs.enqueue(jobs.KICKOFF, project_id=job.project_id)
    job.refresh_from_db()
    if progress:
        progress(job)
    return job


@contextmanager
def _entries(job: ImportJob, path: Path):
    """(total, entries) of the job's source; a zip archive stays open until the end."""
    refused = _refused_folders()
    if job.kind == ImportKind.FOLDER:
        yield (
            sources.count_folder(path, refused=refused),
            sources.iter_folder(path, refused=refused),
        )
    elif job.kind == ImportKind.ZIP:
        with sources.open_zip(path) as archive:
            yield sources.count_zip(path), sources.iter_zip(archive)
    else:
        rows = sources.iter_manifest(path, roots=settings.LOUPE_IMPORT_ROOTS, refused=refused)
        yield sources.count_manifest(path), rows


def _run(job: ImportJob, progress: ProgressCallback | None) -> None:
    path = _source_check(job)
    # A task type whose items are more than one image makes them its own way.
    if task_type_of(job.project).import_items(
        job=job, path=path, accept=lambda entry: _accept(entry, {}), progress=progress
    ):
        return
    classes = {c.name: c.pk for c in LabelClass.objects.filter(project=job.project)}
    with _entries(job, path) as (total, entries):
        job.total = total
        # Counting a large source takes a while: the job is alive.
        run_beat(job, total=total)
        _consume(job, entries, classes, progress)


def _consume(job, entries, classes, progress) -> None:
    seen: set[str] = set()
    batch_size = settings.LOUPE_IMPORT_BATCH_SIZE
    # Reading, decoding and writing files wait on the disk and release the GIL: a few threads
    # work on the next chunk of entries while the main thread inserts the rows of this one.
    # Two chunks at most are in flight, so memory stays bounded.
    with ThreadPoolExecutor(max_workers=IMPORT_THREADS) as pool:
        in_flight: list[tuple[list, list]] = []
        try:
            for chunk in _chunks(entries, batch_size):
                in_flight.append((chunk, [pool.submit(_accept, entry, classes) for entry in chunk]))
                if len(in_flight) == 2:
                    _settle(job, *in_flight[0], seen, progress)
                    in_flight.pop(0)
            while in_flight:
                _settle(job, *in_flight[0], seen, progress)
                in_flight.pop(0)
        except BaseException:
            # Neither the failed chunk nor the one read ahead will be inserted: remove the
            # files they created (a file some committed row uses stays).
            for _chunk, futures in in_flight:
                _discard(futures)
            raise


def _settle(job, chunk, futures, seen: set[str], progress) -> None:
    """Collects a chunk's accepted files and rejections, and inserts them in one batch."""
    batch: list[_Accepted] = []
    rejections: list[ImportRejection] = []
    for entry, future in zip(chunk, futures, strict=True):
        accepted, reason = future.result()
        job.processed += 1
        if reason:
            rejections.append(ImportRejection(job=job, path=entry.name[:1000], reason=reason))
        elif accepted.sha256 in seen:
            job.duplicates += 1
        else:
            seen.add(accepted.sha256)
            batch.append(accepted)
    _flush(job, batch, rejections, progress)
    # With DEBUG on, Django keeps every query it ran: forget them batch by batch.
    reset_queries()
    if len(seen) > 50 * settings.LOUPE_IMPORT_BATCH_SIZE:
        seen.clear()  # the database catches older duplicates; keep memory bounded


def _discard(futures) -> None:
    """Removes the files a chunk that will not be inserted created: nothing half-written.
    A file a committed row uses (the same content imported before) stays."""
    for future in futures:
        try:
            accepted, _ = future.result()
        except Exception:  # noqa: BLE001 (a file that failed to be written left nothing)
            continue
        if (
            accepted is not None
            and accepted.created_file
            and not Item.objects.filter(file=accepted.file_name).exists()
        ):
            file_delete(name=accepted.file_name)


def _chunks(entries, size: int):
    chunk = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _accept(entry: sources.SourceEntry, classes: dict[str, int]) -> tuple[_Accepted | None, str]:
    """Validates one entry; returns the accepted file or the reason it is rejected."""
    if entry.problem:
        return None, entry.problem
    label_class_id = None
    if entry.label is not None:
        label_class_id = classes.get(entry.label)
        if label_class_id is None:
            return None, f"unknown class '{entry.label}'"
    try:
        content = entry.read(max_bytes=settings.LOUPE_MAX_IMAGE_BYTES)
    except sources.EntryRejected as exc:
        return None, exc.reason
    if not content:
        return None, "empty file"
    try:
        width, height, image_format = _inspect_image(content)
    except ValueError as exc:
        return None, str(exc)
    sha256 = hashlib.sha256(content).hexdigest()
    file_name = item_file_name(sha256=sha256, image_format=image_format)
    created = file_store(name=file_name, content=content)
    return _Accepted(
        sha256=sha256,
        file_name=file_name,
        created_file=created,
        original_name=entry.name[:500],
        size_bytes=len(content),
        width=width,
        height=height,
        image_format=image_format,
        label_class_id=label_class_id,
        metadata=entry.metadata,
    ), ""


def _inspect_image(content: bytes) -> tuple[int, int, str]:
    """Decodes the whole image once, so truncated or corrupt files are caught at import."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                image_format = image.format or ""
                width, height = image.size
                if width * height > settings.LOUPE_MAX_IMAGE_PIXELS:
                    raise ValueError("image too large (pixels)")
                image.load()
    except UnidentifiedImageError:
        if content.startswith(IMAGE_SIGNATURES):
            raise ValueError("corrupt image: truncated or damaged header") from None
        raise ValueError("not an image (unrecognised format)") from None
    except (
        OSError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as e:
        raise ValueError(f"corrupt image: {e}") from None
    return width, height, image_format


def _flush(job, batch, rejections, progress) -> None:
    """Inserts one chunk's items, imported labels and rejections in one transaction. When it
    fails, `_consume` removes the files the chunk created (`_discard`)."""
    with transaction.atomic():
        # Serialises concurrent imports into one project (no-op on SQLite, which
        # serialises writers anyway).
        Project.objects.select_for_update().filter(pk=job.project_id).first()
        existing = dict(
            Item.objects.filter(
                project_id=job.project_id, sha256__in=[a.sha256 for a in batch]
            ).values_list("sha256", "import_job_id")
        )
        fresh = [a for a in batch if a.sha256 not in existing]
        # Rows an earlier attempt of this job committed are in `imported` already.
        earlier = sum(existing.get(a.sha256) == job.pk for a in batch)
        splits = _items_insert(job, fresh)
        labeled = [
            (a, split)
            for a, split in zip(fresh, splits, strict=True)
            if a.label_class_id is not None
        ]
        ids = dict(
            Item.objects.filter(
                project_id=job.project_id, sha256__in=[a.sha256 for a, _ in labeled]
            ).values_list("sha256", "id")
            if labeled
            else ()
        )
        truths = [
            GroundTruth(
                item_id=ids[a.sha256],
                project_id=job.project_id,
                in_holdout=split == Split.HOLDOUT,
                label_class_id=a.label_class_id,
                decided_by=Decision.IMPORTED,
                agreement=1.0,
            )
            for a, split in labeled
        ]
        GroundTruth.objects.bulk_create(truths)
        ImportRejection.objects.bulk_create(rejections)
        job.imported += len(fresh)
        job.labeled += len(truths)
        job.duplicates += len(batch) - len(fresh) - earlier
        job.rejected += len(rejections)
        run_beat(
            job,
            processed=job.processed,
            imported=job.imported,
            labeled=job.labeled,
            duplicates=job.duplicates,
            rejected=job.rejected,
        )
    if progress:
        progress(job)


def _items_insert(job: ImportJob, fresh: list[_Accepted]) -> list[str]:
    """Inserts the batch's items from plain rows (loupe.bulk); returns each one's split.
    Labeled items go to train or to the project's fixed holdout (`labeling.holdout`)."""
    now = db_value(Item, "created_at", timezone.now())
    source = job.source_tag[:100]
    splits, rows = [], []
    holdout = HoldoutAssigner(project=job.project, fraction=job.holdout_fraction)
    for a in fresh:
        labeled = a.label_class_id is not None
        split = Split.POOL
        if labeled:
            split = holdout.split_for(sha256=a.sha256, class_id=a.label_class_id)
        splits.append(split)
        rows.append(
            (
                job.project_id,
                a.file_name,
                a.original_name,
                a.sha256,
                a.size_bytes,
                a.width,
                a.height,
                a.image_format,
                db_value(Item, "metadata", a.metadata),
                source,
                split,
                ItemState.LABELED if labeled else ItemState.UNLABELED,
                job.pk,
                now,
                now,
            )
        )
    insert_rows(Item, ITEM_IMPORT_COLUMNS, rows)
    return splits

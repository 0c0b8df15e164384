import io
import json
import tracemalloc
import zipfile
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from loupe.datasets.models import ImportJob, Item, ItemState, JobStatus, Split
from loupe.datasets.services import import_job_create, import_job_run
from loupe.errors import ApplicationError
from loupe.labeling.models import GroundTruth
from loupe.learning.loop import runs_resume
from loupe.projects.services import project_create
from tests.images import png_bytes, write_imagefolder
from tests.platform.datasets.zips import flip_data_byte, patch_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return project_create(name="Inspection", created_by=None, classes=["good", "scratch", "dent"])


def run_import(project, path, **kwargs):
    job = import_job_create(project=project, path=str(path), enqueue=False, **kwargs)
    return import_job_run(import_job_id=job.pk)


def test_imagefolder_import_keeps_labels_and_flat_files_join_the_pool(project, import_root):
    write_imagefolder(import_root / "set", {"good": 5, "scratch": 2, "": 3})

    job = run_import(project, import_root / "set")

    assert job.status == JobStatus.SUCCEEDED
    assert (job.imported, job.labeled, job.rejected, job.total) == (10, 7, 0, 10)
    assert Item.objects.filter(project=project, state=ItemState.LABELED).count() == 7
    assert (
        Item.objects.filter(project=project, state=ItemState.UNLABELED, split=Split.POOL).count()
        == 3
    )
    labels = GroundTruth.objects.filter(item__project=project).values_list(
        "label_class__name", flat=True
    )
    assert sorted(labels) == ["good"] * 5 + ["scratch"] * 2
    item = Item.objects.filter(project=project).first()
    assert default_storage.exists(item.file.name)
    assert item.file.name == f"items/{item.sha256[:2]}/{item.sha256}.png"
    assert (item.width, item.height, item.source) == (16, 16, "set")


def test_reimporting_the_same_data_is_a_no_op(project, import_root):
    write_imagefolder(import_root / "set", {"good": 4, "": 2})
    run_import(project, import_root / "set")

    again = run_import(project, import_root / "set")

    assert (again.imported, again.duplicates) == (0, 6)
    assert Item.objects.filter(project=project).count() == 6
    assert GroundTruth.objects.filter(item__project=project).count() == 4


def test_bad_files_are_rejected_one_by_one_and_the_rest_imported(project, import_root):
    folder = import_root / "mixed"
    write_imagefolder(folder, {"good": 2})
    (folder / "good" / "broken.png").write_bytes(png_bytes(99)[:40])
    (folder / "good" / "notes.txt").write_text("not an image")
    (folder / "good" / "empty.png").write_bytes(b"")
    (folder / "unicorn").mkdir()
    (folder / "unicorn" / "x.png").write_bytes(png_bytes(7))

    job = run_import(project, folder)

    reasons = {r.path: r.reason for r in job.rejections.all()}
    assert job.imported == 2 and job.rejected == 4
    assert reasons["good/broken.png"].startswith("corrupt image")
    assert reasons["good/notes.txt"] == "not an image (unrecognised format)"
    assert reasons["good/empty.png"] == "empty file"
    assert reasons["unicorn/x.png"] == "unknown class 'unicorn'"


def test_zip_with_bad_entries_imports_the_good_ones_and_reports_each_bad_one(project, import_root):
    archive = import_root / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/good/a.png", png_bytes(1))
        zf.writestr("data/scratch/b.png", png_bytes(2))
        zf.writestr("data/good/a-copy.png", png_bytes(1))  # duplicate content
        zf.writestr("data/good/corrupt.png", png_bytes(3)[:30])
        zf.writestr("data/good/empty.png", b"")
        zf.writestr("data/good/readme.md", "# not an image")
        zf.writestr("../../evil.png", png_bytes(4))

    job = run_import(project, archive)

    reasons = {r.path: r.reason for r in job.rejections.all()}
    assert (job.imported, job.duplicates, job.rejected) == (2, 1, 4)
    assert reasons["../../evil.png"] == "unsafe path in archive (path traversal)"
    assert reasons["data/good/empty.png"] == "empty file"
    assert "corrupt image" in reasons["data/good/corrupt.png"]
    assert "not an image" in reasons["data/good/readme.md"]
    assert sorted(Item.objects.values_list("ground_truth__label_class__name", flat=True)) == [
        "good",
        "scratch",
    ]
    assert not (import_root.parent / "evil.png").exists()


def test_manifests_carry_labels_and_metadata(project, import_root):
    images = import_root / "imgs"
    images.mkdir()
    for i in range(3):
        (images / f"{i}.png").write_bytes(png_bytes(10 + i))
    csv_path = import_root / "m.csv"
    csv_path.write_text(
        "path,label,line,shift\nimgs/0.png,good,A,night\nimgs/1.png,,B,day\n"
        "imgs/missing.png,good,A,day\n/etc/passwd,,A,day\nimgs/2.png,wolf,A,day\n"
    )

    job = run_import(project, csv_path)

    assert (job.imported, job.labeled, job.rejected) == (2, 1, 3)
    first = Item.objects.get(original_name="imgs/0.png")
    assert first.metadata == {"line": "A", "shift": "night"}
    assert first.ground_truth.label_class.name == "good"
    reasons = sorted(r.reason for r in job.rejections.all())
    assert reasons == [
        "file not found or unreadable",
        "path outside the allowed import folders",
        "unknown class 'wolf'",
    ]


def test_jsonl_manifest_rejects_malformed_lines(project, import_root):
    (import_root / "a.png").write_bytes(png_bytes(21))
    manifest = import_root / "m.jsonl"
    lines = [json.dumps({"path": "a.png", "label": "dent", "camera": 3}), "{not json", "[1, 2]"]
    manifest.write_text("\n".join(lines) + "\n")

    job = run_import(project, manifest)

    assert (job.imported, job.rejected) == (1, 2)
    assert Item.objects.get().metadata == {"camera": 3}


def test_paths_outside_the_import_roots_are_refused(project, import_root, tmp_path):
    outside = tmp_path / "elsewhere"
    write_imagefolder(outside, {"": 1})
    (import_root / "link").symlink_to(outside)

    for path in (outside, import_root / "link", import_root / ".." / "elsewhere"):
        with pytest.raises(ApplicationError) as error:
            import_job_create(project=project, path=str(path), enqueue=False)
        assert error.value.status == 403
    assert ImportJob.objects.count() == 0


def test_a_failing_batch_leaves_nothing_half_written(project, import_root, monkeypatch):
    write_imagefolder(import_root / "set", {"good": 3})

    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(GroundTruth.objects, "bulk_create", explode)
    job = run_import(project, import_root / "set")

    assert job.status == JobStatus.FAILED
    assert "database went away" in job.error
    assert Item.objects.count() == 0
    _dirs, files = default_storage.listdir("items") if default_storage.exists("items") else ([], [])
    stored = [
        name
        for sub in (default_storage.listdir("items")[0] if default_storage.exists("items") else [])
        for name in default_storage.listdir(f"items/{sub}")[1]
    ]
    assert stored == [] and files == []


def test_a_batch_failing_mid_import_leaves_only_the_files_of_committed_rows(
    project, import_root, monkeypatch, settings
):
    """Files of the next chunk are written while a batch is inserted: when that batch fails,
    the chunk read ahead leaves no file behind either."""
    settings.LOUPE_IMPORT_BATCH_SIZE = 2
    write_imagefolder(import_root / "set", {"good": 7})
    real = GroundTruth.objects.bulk_create
    calls = []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(GroundTruth.objects, "bulk_create", second_fails)
    job = run_import(project, import_root / "set")

    assert job.status == JobStatus.FAILED and "database went away" in job.error
    kept = set(Item.objects.values_list("file", flat=True))
    assert len(kept) == 2  # the first batch committed
    stored = {
        f"items/{sub}/{name}"
        for sub in default_storage.listdir("items")[0]
        for name in default_storage.listdir(f"items/{sub}")[1]
    }
    assert stored == kept


def test_progress_is_reported_while_importing(project, import_root, settings):
    settings.LOUPE_IMPORT_BATCH_SIZE = 4
    write_imagefolder(import_root / "set", {"": 10})
    job = import_job_create(project=project, path=str(import_root / "set"), enqueue=False)
    seen = []

    import_job_run(import_job_id=job.pk, progress=lambda j: seen.append((j.processed, j.total)))

    assert seen[0] == (4, 10) and seen[-1] == (10, 10)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)
    assert ImportJob.objects.get(pk=job.pk).progress == 1.0


def test_a_redelivered_import_does_nothing_twice(project, import_root):
    write_imagefolder(import_root / "set", {"good": 2})
    job = import_job_create(project=project, path=str(import_root / "set"), enqueue=False)
    import_job_run(import_job_id=job.pk)

    again = import_job_run(import_job_id=job.pk)

    assert again.status == JobStatus.SUCCEEDED and again.imported == 2
    assert Item.objects.count() == 2


def test_holdout_fraction_moves_labeled_items_to_the_holdout_split(project, import_root):
    write_imagefolder(import_root / "set", {"good": 40})

    run_import(project, import_root / "set", holdout_fraction=0.5)

    holdout = Item.objects.filter(split=Split.HOLDOUT).count()
    assert 8 <= holdout <= 32
    assert Item.objects.filter(split=Split.TRAIN).count() == 40 - holdout
    # Each label knows its item's split, and its project.
    assert GroundTruth.objects.filter(in_holdout=True).count() == holdout
    assert GroundTruth.objects.filter(project=project).count() == 40


def test_a_zip_that_is_not_a_zip_fails_with_a_clear_error(project, import_root):
    bogus = import_root / "bogus.zip"
    bogus.write_bytes(io.BytesIO(b"plain text").getvalue())

    job = run_import(project, bogus)

    assert job.status == JobStatus.FAILED
    assert "not a readable zip archive" in job.error


def test_a_member_whose_header_understates_its_size_costs_no_memory_and_is_rejected(
    project, import_root, settings
):
    """A deflated member that is really 64 MiB but whose headers say 1 KiB: it is read in
    blocks that stop at the size limit, rejected with its reason, and the rest imports."""
    settings.LOUPE_MAX_IMAGE_BYTES = 1 << 20
    archive = import_root / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good/a.png", png_bytes(1))
        zf.writestr("good/bomb.png", bytes(64 << 20))
        zf.writestr("good/b.png", png_bytes(2))
    patch_member(archive, "good/bomb.png", size=1024)

    tracemalloc.start()
    try:
        job = run_import(project, archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.imported, job.rejected) == (2, 1)
    reason = job.rejections.get(path="good/bomb.png").reason
    assert reason.startswith("corrupt archive member")
    assert peak < 16 << 20


def test_a_members_size_is_what_is_read_not_what_its_header_says(project, import_root, settings):
    settings.LOUPE_MAX_IMAGE_BYTES = 1 << 20
    archive = import_root / "sizes.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good/huge.png", b"\x89PNG" + bytes(3 << 20))
        zf.writestr("good/small.png", png_bytes(1))
    # A header that claims 2 GiB for a small image does not make it too large.
    patch_member(archive, "good/small.png", size=2 << 30)

    job = run_import(project, archive)

    assert (job.status, job.imported, job.rejected) == (JobStatus.SUCCEEDED, 1, 1)
    assert Item.objects.get().original_name == "good/small.png"
    assert job.rejections.get().reason == "file too large (over 1 MiB)"


def test_corrupt_encrypted_and_unsupported_members_are_rejected_one_by_one(project, import_root):
    archive = import_root / "damaged.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good/a.png", png_bytes(1))
        zf.writestr("good/bad-crc.png", png_bytes(2))
        zf.writestr("good/secret.png", png_bytes(3))
        zf.writestr("good/ppmd.png", png_bytes(4))
        zf.writestr("good/b.png", png_bytes(5))
        zf.writestr("good/broken-deflate.png", png_bytes(6), compress_type=zipfile.ZIP_DEFLATED)
    flip_data_byte(archive, "good/bad-crc.png")
    patch_member(archive, "good/secret.png", flag=0x1)
    patch_member(archive, "good/ppmd.png", method=98)
    flip_data_byte(archive, "good/broken-deflate.png")

    job = run_import(project, archive)

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.imported, job.rejected) == (2, 4)
    reasons = {r.path: r.reason for r in job.rejections.all()}
    assert reasons["good/bad-crc.png"].startswith("corrupt archive member")
    assert reasons["good/secret.png"] == "encrypted (password-protected) archive member"
    assert reasons["good/ppmd.png"] == "unsupported compression method (98)"
    assert reasons["good/broken-deflate.png"].startswith("corrupt archive member")


class WorkerKilled(BaseException):
    """Ends the import where a SIGKILL would: nothing after it runs, no status is written."""


def killed_after_first_batch(project, import_root, settings):
    """An import whose worker died after its first batch committed, abandoned long enough
    ago that another worker may take it over."""
    settings.LOUPE_IMPORT_BATCH_SIZE = 3
    write_imagefolder(import_root / "set", {"good": 5, "scratch": 3})
    (import_root / "set" / "good" / "broken.png").write_bytes(b"\x89PNG not really")
    job = import_job_create(project=project, path=str(import_root / "set"), enqueue=False)

    def die(current):
        raise WorkerKilled

    with pytest.raises(WorkerKilled):
        import_job_run(import_job_id=job.pk, progress=die)
    stale = timezone.now() - timedelta(seconds=settings.LOUPE_STALE_AFTER_SECONDS + 1)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    return job


def test_the_periodic_resume_finishes_an_import_whose_worker_died(
    project, import_root, settings, django_capture_on_commit_callbacks
):
    job = killed_after_first_batch(project, import_root, settings)
    assert ImportJob.objects.get(pk=job.pk).status == JobStatus.RUNNING

    with django_capture_on_commit_callbacks(execute=True):
        resent = runs_resume()

    job.refresh_from_db()
    assert resent["imports"] == 1
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert Item.objects.filter(project=project).count() == 8
    assert GroundTruth.objects.filter(project=project).count() == 8


def test_an_import_taken_over_from_a_dead_worker_counts_every_file_once(
    project, import_root, settings
):
    job = killed_after_first_batch(project, import_root, settings)

    import_job_run(import_job_id=job.pk)  # the message, redelivered to another worker

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.total, job.processed, job.imported, job.labeled) == (9, 9, 8, 8)
    assert (job.duplicates, job.rejected, job.rejections.count()) == (0, 1, 1)
    assert job.progress == 1.0


def test_the_periodic_resume_leaves_a_live_import_alone(
    project, import_root, django_capture_on_commit_callbacks
):
    write_imagefolder(import_root / "set", {"good": 2})
    job = import_job_create(project=project, path=str(import_root / "set"), enqueue=False)
    ImportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )

    with django_capture_on_commit_callbacks(execute=True):
        resent = runs_resume()

    assert resent["imports"] == 0
    assert ImportJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert Item.objects.filter(project=project).count() == 0

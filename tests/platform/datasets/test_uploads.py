"""Uploaded archives: each belongs to the project that sent it, is limited in size, and is
removed once its import has finished, whether it succeeded or failed."""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory

from loupe.accounts.models import Role
from loupe.datasets.models import ImportJob, ImportKind, Item, JobStatus
from loupe.datasets.services import import_job_create, import_job_run, import_upload_save
from loupe.datasets.uploads import upload_size_check
from loupe.errors import ApplicationError
from loupe.projects.services import project_create
from tests.factories import MembershipFactory, UserFactory
from tests.images import png_bytes

pytestmark = pytest.mark.django_db


def zip_bytes(count: int = 2, *, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            archive.writestr(f"ok/{i}.png", png_bytes(seed + i))
    return buffer.getvalue()


def engineer_of(project):
    user = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=user, role=Role.ENGINEER)
    return user


@pytest.fixture
def two_projects(import_root):
    a = project_create(name="Alpha", created_by=None, classes=["ok", "crack"])
    b = project_create(name="Beta", created_by=None, classes=["ok", "crack"])
    return a, b


def upload(project, content: bytes = b"", *, name="batch.zip", **options) -> ImportJob:
    file = SimpleUploadedFile(name, content or zip_bytes())
    return import_upload_save(project=project, uploaded_file=file, **options)


def uploaded_files(settings) -> list[Path]:
    root = Path(settings.LOUPE_UPLOAD_DIR)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_another_projects_upload_cannot_be_imported_by_path(api_client, two_projects, settings):
    a, b = two_projects
    queued = upload(a)  # waits for a worker
    upload_path = Path(queued.source_path)
    api_client.force_authenticate(engineer_of(b))

    for path in (upload_path, upload_path.parent, settings.LOUPE_UPLOAD_DIR):
        response = api_client.post(
            f"/api/v1/projects/{b.slug}/imports/", {"path": str(path)}, format="json"
        )
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "path_not_allowed"
    assert not ImportJob.objects.filter(project=b).exists()

    job = import_job_run(import_job_id=queued.pk)
    assert (job.status, job.imported) == (JobStatus.SUCCEEDED, 2)
    assert not upload_path.exists()


def test_the_upload_folder_is_refused_even_inside_an_import_root(two_projects, settings, tmp_path):
    a, b = two_projects
    settings.LOUPE_IMPORT_ROOTS = [str(tmp_path)]  # holds the upload folder too
    queued = upload(a)
    with pytest.raises(ApplicationError) as error:
        import_job_create(project=b, path=queued.source_path, enqueue=False)
    assert error.value.status == 403

    # Nor can a manifest reach into it: its row is rejected, nothing is read.
    extracted = Path(settings.LOUPE_UPLOAD_DIR) / str(a.pk) / "seen.png"
    extracted.write_bytes(png_bytes(5))
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\n{extracted},ok\n")
    job = import_job_run(
        import_job_id=import_job_create(project=b, path=str(manifest), enqueue=False).pk
    )
    assert (job.imported, job.rejected) == (0, 1)
    assert job.rejections.get().reason == "path outside the allowed import folders"


def test_refusals_name_the_allowed_folders_without_server_paths(two_projects, import_root):
    a, _ = two_projects

    with pytest.raises(ApplicationError) as error:
        import_job_create(project=a, path="/etc", enqueue=False)

    assert error.value.extra["allowed_roots"] == ["imports"]
    assert "imports" in error.value.message
    assert str(import_root.parent) not in error.value.message + str(error.value.extra)


def test_a_job_pointing_at_another_projects_upload_fails_and_leaves_it_alone(two_projects):
    """Even a job whose source was recorded by other means never reads, nor deletes, the
    upload of another project: that project's own import still succeeds."""
    a, b = two_projects
    queued = upload(a)
    foreign = ImportJob.objects.create(
        project=b, kind=ImportKind.ZIP, source_path=queued.source_path, source_tag="x"
    )

    failed = import_job_run(import_job_id=foreign.pk)

    assert failed.status == JobStatus.FAILED and not Item.objects.filter(project=b).exists()
    assert Path(queued.source_path).exists()
    assert str(Path(queued.source_path).parent) not in failed.error
    assert import_job_run(import_job_id=queued.pk).status == JobStatus.SUCCEEDED


def test_a_failed_import_removes_its_upload(two_projects, settings):
    a, _ = two_projects
    queued = upload(a, b"this is not a zip archive")

    job = import_job_run(import_job_id=queued.pk)

    assert job.status == JobStatus.FAILED and "not a readable zip archive" in job.error
    assert uploaded_files(settings) == []


def test_an_upload_refused_before_its_import_is_queued_leaves_no_file(two_projects, settings):
    a, _ = two_projects

    with pytest.raises(ApplicationError):
        upload(a, holdout_fraction=1.5)

    assert uploaded_files(settings) == [] and not ImportJob.objects.exists()


def test_an_upload_over_the_limit_is_refused_with_the_limit_in_words(
    api_client, two_projects, settings
):
    a, _ = two_projects
    settings.LOUPE_MAX_UPLOAD_BYTES = 1000
    api_client.force_authenticate(engineer_of(a))
    archive = io.BytesIO(zip_bytes(4))
    archive.name = "big.zip"

    response = api_client.post(
        f"/api/v1/projects/{a.slug}/imports/", {"file": archive}, format="multipart"
    )

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "upload_too_large"
    assert "1000 bytes" in error["message"]
    assert not ImportJob.objects.exists() and uploaded_files(settings) == []


def test_the_service_refuses_an_upload_over_the_limit_too(two_projects, settings):
    a, _ = two_projects
    settings.LOUPE_MAX_UPLOAD_BYTES = 1024

    with pytest.raises(ApplicationError) as error:
        upload(a, zip_bytes(8))

    assert error.value.status == 413 and "1 KiB" in error.value.message
    assert uploaded_files(settings) == [] and not ImportJob.objects.exists()


def test_a_file_over_the_limit_is_dropped_while_the_body_is_read(settings):
    """The file never reaches the handlers that store uploads; the other fields still do."""
    settings.LOUPE_MAX_UPLOAD_BYTES = 1000
    archive = SimpleUploadedFile("big.zip", zip_bytes(4))
    request = RequestFactory().post("/", {"file": archive, "source_tag": "line-c"})

    assert "file" not in request.FILES and request.POST["source_tag"] == "line-c"
    with pytest.raises(ApplicationError) as error:
        upload_size_check(request=request)
    assert error.value.status == 413

    settings.LOUPE_MAX_UPLOAD_BYTES = 1 << 20
    small = RequestFactory().post("/", {"file": SimpleUploadedFile("a.zip", zip_bytes(4))})
    assert small.FILES["file"].size == len(zip_bytes(4))
    upload_size_check(request=small)


def test_the_upload_page_explains_the_limit(client, two_projects, settings):
    a, _ = two_projects
    settings.LOUPE_MAX_UPLOAD_BYTES = 1000
    client.force_login(engineer_of(a))

    response = client.post(
        f"/projects/{a.slug}/imports/upload/", {"file": SimpleUploadedFile("big.zip", zip_bytes(4))}
    )

    assert response.status_code == 413
    assert "larger than the 1000 bytes limit" in response.content.decode()
    assert not ImportJob.objects.exists() and uploaded_files(settings) == []


def test_a_folder_import_never_reads_the_upload_or_media_folders(two_projects, settings, tmp_path):
    """An import root that holds Loupe's own folders: importing it skips them, so another
    project's queued uploads and stored images stay out of reach."""
    a, b = two_projects
    settings.LOUPE_IMPORT_ROOTS = [str(tmp_path)]
    done = import_job_run(import_job_id=upload(a).pk)
    assert done.imported == 2  # project A's images are now in the media folder
    upload(a, zip_bytes(2, seed=10))  # and one more archive waits in the upload folder
    (tmp_path / "b.png").write_bytes(png_bytes(99))

    for path in (settings.MEDIA_ROOT, Path(settings.MEDIA_ROOT) / "items"):
        with pytest.raises(ApplicationError):
            import_job_create(project=b, path=str(path), enqueue=False)
    job = import_job_run(
        import_job_id=import_job_create(project=b, path=str(tmp_path), enqueue=False).pk
    )

    assert (job.status, job.total, job.imported, job.rejected) == (JobStatus.SUCCEEDED, 1, 1, 0)
    assert list(Item.objects.filter(project=b).values_list("original_name", flat=True)) == ["b.png"]

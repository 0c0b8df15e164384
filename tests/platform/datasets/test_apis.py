import io
import zipfile

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import ImportJob
from loupe.projects.services import project_create
from tests.factories import UserFactory
from tests.images import png_bytes, write_imagefolder

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def engineer(api_client):
    user = UserFactory(role=Role.ENGINEER)
    api_client.force_authenticate(user)
    return user


@pytest.fixture
def project(engineer):
    project = project_create(name="Welds", created_by=engineer, classes=["ok", "crack"])
    return project


def import_folder(api_client, project, path, capture):
    with capture(execute=True):
        response = api_client.post(f"/api/v1/projects/{project.slug}/imports/", {"path": str(path)})
    assert response.status_code == 202


def test_items_filter_by_state_class_split_and_source(
    api_client, project, import_root, django_capture_on_commit_callbacks
):
    write_imagefolder(import_root / "a", {"ok": 3, "crack": 2, "": 4})
    import_folder(api_client, project, import_root / "a", django_capture_on_commit_callbacks)

    url = f"/api/v1/projects/{project.slug}/items/"
    assert len(api_client.get(url).json()["results"]) == 9
    cracks = api_client.get(url, {"label": "crack"}).json()["results"]
    assert [i["label"] for i in cracks] == ["crack", "crack"]
    assert len(api_client.get(url, {"state": "unlabeled"}).json()["results"]) == 4
    train = api_client.get(url, {"split": "train"}).json()["results"]
    holdout = api_client.get(url, {"split": "holdout"}).json()["results"]
    # Every seed label trains or measures; each class keeps one for training.
    assert len(train) + len(holdout) == 5
    assert {i["label"] for i in train} == {"ok", "crack"}
    assert len(api_client.get(url, {"source": "a"}).json()["results"]) == 9
    assert api_client.get(url, {"state": "lost"}).status_code == 400


def test_items_are_paged_with_a_cursor(
    api_client, project, import_root, django_capture_on_commit_callbacks
):
    write_imagefolder(import_root / "a", {"": 7})
    import_folder(api_client, project, import_root / "a", django_capture_on_commit_callbacks)

    url = f"/api/v1/projects/{project.slug}/items/?page_size=3"
    seen = []
    while url:
        page = api_client.get(url).json()
        seen += [i["id"] for i in page["results"]]
        url = page["next"]

    assert len(seen) == 7 and len(set(seen)) == 7


def test_an_uploaded_zip_is_imported_and_its_report_lists_rejections(
    api_client, project, import_root, django_capture_on_commit_callbacks
):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok/1.png", png_bytes(1))
        archive.writestr("crack/2.png", png_bytes(2))
        archive.writestr("crack/bad.png", b"\x89PNG garbage")
    buffer.name = "batch.zip"
    buffer.seek(0)

    with django_capture_on_commit_callbacks(execute=True):
        created = api_client.post(
            f"/api/v1/projects/{project.slug}/imports/", {"file": buffer}, format="multipart"
        )

    assert created.status_code == 202
    report = api_client.get(f"/api/v1/imports/{created.json()['id']}/").json()
    assert report["status"] == "succeeded" and report["progress"] == 1.0
    assert (report["imported"], report["labeled"], report["rejected"]) == (2, 2, 1)
    assert report["rejections"][0]["path"] == "crack/bad.png"
    assert report["source_tag"] == "batch"
    item = api_client.get(f"/api/v1/projects/{project.slug}/items/").json()["results"][0]
    image = api_client.get(item["file_url"])
    assert image.status_code == 200 and b"".join(image.streaming_content)[:4] == b"\x89PNG"


def test_import_needs_exactly_one_source(api_client, project):
    response = api_client.post(f"/api/v1/projects/{project.slug}/imports/", {})

    assert response.status_code == 400
    assert ImportJob.objects.count() == 0


def test_project_creation_sets_ordered_classes_with_targets(api_client):
    response = api_client.post(
        "/api/v1/projects/",
        {
            "name": "Castings",
            "classes": [{"name": "good"}, {"name": "porosity", "target_count": 200}],
            "batch_size": 25,
        },
        format="json",
    )

    body = response.json()
    assert response.status_code == 201
    assert body["slug"] == "castings"
    assert [c["name"] for c in body["classes"]] == ["good", "porosity"]
    assert body["classes"][1]["target_count"] == 200
    assert body["settings"]["batch_size"] == 25


def test_an_image_missing_from_storage_is_a_clear_404_and_the_item_stays(
    api_client, project, import_root, django_capture_on_commit_callbacks
):
    from pathlib import Path

    from django.conf import settings

    from loupe.datasets.models import Item

    write_imagefolder(import_root / "a", {"ok": 2})
    import_folder(api_client, project, import_root / "a", django_capture_on_commit_callbacks)
    present, gone = Item.objects.filter(project=project).order_by("id")
    assert api_client.get(f"/api/v1/items/{present.pk}/file/").status_code == 200
    (Path(settings.MEDIA_ROOT) / gone.file.name).unlink()

    response = api_client.get(f"/api/v1/items/{gone.pk}/file/")
    assert response.status_code == 404
    assert "missing from media storage" in response.json()["error"]["message"]
    assert Item.objects.filter(pk=gone.pk, ground_truth__isnull=False).exists()

"""The statistics and exports through the REST API: who may read them, and what they say."""

import csv
import io
import json
import zipfile

import pytest

from loupe.accounts.models import Role
from loupe.labeling.models import GroundTruth
from tests.factories import MembershipFactory, UserFactory
from tests.platform.insights.builders import build_world, with_file

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "classes",
    "imbalance",
    "throughput",
    "eta",
    "agreement",
    "drift",
    "learning-curve",
    "stopping",
]


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def manager(api_client, world):
    user = UserFactory(role=Role.MANAGER)
    MembershipFactory(project=world.project, user=user, role=Role.MANAGER)
    api_client.force_authenticate(user)
    return api_client


@pytest.mark.parametrize("name", ENDPOINTS)
def test_every_statistic_answers_a_member(manager, world, name):
    response = manager.get(f"/api/v1/projects/{world.project.slug}/insights/{name}/")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("name", ENDPOINTS[:2] + ["../exports/ground-truth.csv"])
def test_outsiders_are_told_the_project_does_not_exist(api_client, world, name):
    api_client.force_authenticate(UserFactory(role=Role.ENGINEER))
    response = api_client.get(f"/api/v1/projects/{world.project.slug}/insights/{name}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_class_counts_through_the_api(manager, world):
    body = manager.get(f"/api/v1/projects/{world.project.slug}/insights/classes/").json()
    scratch = next(c for c in body["classes"] if c["name"] == "scratch")
    assert (
        scratch["ground_truth"]
        == GroundTruth.objects.filter(label_class=world.scratch, needs_review=False).count()
    )
    assert (scratch["target"], scratch["predicted_in_pool"], scratch["in_annotation"]) == (5, 2, 2)


def test_a_bad_window_is_a_clear_error(manager, world):
    response = manager.get(f"/api/v1/projects/{world.project.slug}/insights/eta/?days=zero")
    assert response.status_code == 400
    assert "days" in response.json()["error"]["message"]


def _labeled_with_files(world):
    truths = GroundTruth.objects.filter(item__project=world.project, needs_review=False)
    for seed, gt in enumerate(truths.select_related("item")):
        with_file(gt.item, seed)
    return truths


def test_csv_and_jsonl_exports_hold_every_usable_label(manager, world):
    truths = _labeled_with_files(world)
    base = f"/api/v1/projects/{world.project.slug}/exports/"

    response = manager.get(base + "ground-truth.csv")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == truths.count() == 12
    assert {r["label"] for r in rows} == {"good", "scratch"}
    assert sum(r["label"] == "scratch" for r in rows) == 3

    lines = b"".join(manager.get(base + "ground-truth.jsonl").streaming_content).splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 12 and records[0]["item_id"] == min(r["item_id"] for r in records)

    holdout = manager.get(base + "ground-truth.jsonl?split=holdout")
    assert len(b"".join(holdout.streaming_content).splitlines()) == 2
    assert manager.get(base + "ground-truth.csv?split=moon").status_code == 400


def test_the_imagefolder_zip_is_streamed_with_one_folder_per_class(manager, world):
    truths = _labeled_with_files(world)
    response = manager.get(f"/api/v1/projects/{world.project.slug}/exports/imagefolder.zip")

    assert response.streaming and response["Content-Type"] == "application/zip"
    chunks = list(response.streaming_content)
    assert len(chunks) > 1  # sent as it is written
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    names = archive.namelist()
    assert len(names) == truths.count()
    assert sum(n.startswith("train/scratch/") for n in names) == 3
    assert sum(n.startswith("holdout/good/") for n in names) == 2
    first = truths.order_by("item_id").first().item
    with first.file.open("rb") as handle:
        assert archive.read(f"{first.split}/good/{first.sha256}.png") == handle.read()
    assert archive.testzip() is None


def test_a_missing_image_is_listed_not_fatal(manager, world):
    truths = _labeled_with_files(world)
    lost = truths.order_by("item_id").last().item
    lost.file.delete(save=False)

    response = manager.get(f"/api/v1/projects/{world.project.slug}/exports/imagefolder.zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))

    assert len(archive.namelist()) == truths.count()  # the others plus MISSING.txt
    assert str(lost.pk) in archive.read("MISSING.txt").decode()


def test_the_eta_says_when_the_pool_cannot_meet_a_target(manager, world):
    world.scratch.target_count = 200
    world.scratch.save()

    body = manager.get(f"/api/v1/projects/{world.project.slug}/insights/eta/").json()

    # Three labels two days ago: a pace over two days, per day.
    assert body["labels_per_day"] == pytest.approx(1.5, rel=1e-3)
    assert body["rate_message"] == "3 labels over the last 2.0 days: 1.5 a day."
    assert body["items_left"] == 13
    scratch = next(c for c in body["classes"] if c["name"] == "scratch")
    assert (scratch["reachable"], scratch["pool_may_hold"], scratch["eta_days"]) == (False, 3, None)
    assert "cannot meet the scratch target" in scratch["message"]
    good = next(c for c in body["classes"] if c["name"] == "good")
    assert good["reachable"] is True and good["eta_date"] is not None

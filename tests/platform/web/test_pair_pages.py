"""A pair project's pages and item API: both images of a pair in the gallery and through the
API, p(same) of the latest prediction, and the overview's verification figures (ROC AUC with
its interval, EER, TAR at FAR 1%, the holdout in words) beside the baseline's ROC AUC."""

import re

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import Item, Split
from loupe.datasets.services import import_job_create, import_job_run
from loupe.insights.verification import verification_summary
from loupe.learning.models import ModelVersion, Prediction, RunStatus, ScoringRun, TrainingRun
from loupe.projects.services import project_create
from tests.images import png_bytes
from tests.platform.web.test_model_trust import _json_script
from tests.platform.web.test_views import client_as

pytestmark = pytest.mark.django_db

METRICS = {
    "roc_auc": 0.912,
    "eer": 0.124,
    "tar_at_far_1pct": 0.64,
    "tar_at_far_0_1pct": 0.4,
    "far_resolution": 0.025,
    "threshold_distance": 0.41,
    "balanced_accuracy": 0.85,
    "n_pairs": 80,
    "holdout": "fixed project holdout: 80 pairs, 40 same and 40 different",
    "intervals": {"roc_auc": [0.861, 0.952], "eer": [0.08, 0.18]},
}
BASELINE = {
    "roc_auc": 0.62,
    "eer": 0.41,
    "name": "cosine similarity of 8x8 pixel thumbnails, no learning",
}


@pytest.fixture
def pair_project(import_root):
    """Three pairs from a manifest: one labeled same, one labeled different, one in the pool."""
    folder = import_root / "pairs"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(png_bytes(i, size=24))
    (folder / "pairs.csv").write_text(
        "left,right,label\n0.png,1.png,same\n1.png,2.png,different\n2.png,3.png,\n"
    )
    project = project_create(name="Faces", created_by=None, task_type="pair_verification")
    job = import_job_create(project=project, path=str(folder / "pairs.csv"), enqueue=False)
    assert import_job_run(import_job_id=job.pk).status == "succeeded"
    return project


def _version(project, *, metrics=METRICS, baseline=BASELINE, labels_used=120):
    run = TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED)
    return ModelVersion.objects.create(
        project=project,
        training_run=run,
        version=1,
        weights="models/faces-v1.pt",
        image_size=32,
        class_names=["different", "same"],
        labels_used=labels_used,
        metrics=metrics,
        baseline_metrics=baseline,
    )


def _scored(project, item, p_same):
    version = _version(project)
    scoring = ScoringRun.objects.create(
        project=project, model_version=version, status=RunStatus.SUCCEEDED
    )
    classes = {c.name: c for c in project.classes.all()}
    Prediction.objects.create(
        item=item,
        model_version=version,
        scoring_run=scoring,
        predicted_class=classes["same" if p_same >= 0.5 else "different"],
        confidence=max(p_same, 1 - p_same),
        uncertainty=1 - abs(2 * p_same - 1),
        probs=[1 - p_same, p_same],
    )
    return version


def test_the_item_api_serves_the_second_image_of_a_pair(pair_project):
    client = client_as(pair_project, Role.ENGINEER)
    item = Item.objects.filter(project=pair_project).order_by("id").first()
    body = client.get(f"/api/v1/items/{item.pk}/").json()
    assert body["file_url"] == f"/api/v1/items/{item.pk}/file/"
    assert body["extra_file_urls"] == [f"/api/v1/items/{item.pk}/file/?image=1"]
    listed = client.get(f"/api/v1/projects/{pair_project.slug}/items/").json()["results"]
    assert all(len(row["extra_file_urls"]) == 1 for row in listed)

    left = b"".join(client.get(body["file_url"]).streaming_content)
    right = b"".join(client.get(body["extra_file_urls"][0]).streaming_content)
    assert left == png_bytes(0, size=24) and right == png_bytes(1, size=24)
    missing = client.get(f"/api/v1/items/{item.pk}/file/?image=2")
    assert missing.status_code == 404
    assert "has 2 images (0 to 1); there is no image 2" in missing.json()["error"]["message"]
    assert client.get(f"/api/v1/items/{item.pk}/file/?image=right").status_code == 400


def test_a_one_image_item_has_no_further_images(import_root):
    (import_root / "line" / "ok").mkdir(parents=True)
    (import_root / "line" / "ok" / "a.png").write_bytes(png_bytes(5))
    project = project_create(name="Welds", created_by=None, classes=["ok", "crack"])
    import_job_run(
        import_job_id=import_job_create(
            project=project, path=str(import_root / "line"), enqueue=False
        ).pk
    )
    client = client_as(project, Role.ENGINEER)
    item = Item.objects.get(project=project)
    assert client.get(f"/api/v1/items/{item.pk}/").json()["extra_file_urls"] == []
    assert client.get(f"/api/v1/items/{item.pk}/file/?image=1").status_code == 404


def test_the_gallery_shows_both_images_the_label_and_p_same(pair_project):
    pool = Item.objects.get(project=pair_project, split=Split.POOL)
    _scored(pair_project, pool, 0.73)
    html = client_as(pair_project, Role.ENGINEER).get("/projects/faces/items/").content.decode()

    assert 'class="gallery pairs"' in html and "Each tile is a pair" in html
    for item in Item.objects.filter(project=pair_project):
        assert f'src="/api/v1/items/{item.pk}/file/"' in html
        assert f'src="/api/v1/items/{item.pk}/file/?image=1"' in html
    tile = re.search(rf'<figure class="tile" data-item="{pool.pk}">(.*?)</figure>', html, re.S)
    assert "p(same) 73%" in tile.group(1) and "model: same" not in tile.group(1)
    assert html.count("p(same) 73%") == 1  # the labeled pairs have no prediction
    labels = re.findall(r'<span class="label">(\w+)</span>', html)
    assert sorted(labels) == ["different", "same"]


def test_the_overview_shows_the_verification_figures_beside_the_baseline(pair_project):
    _version(pair_project)
    html = client_as(pair_project, Role.MANAGER).get("/projects/faces/").content.decode()

    figures = re.search(r'<section class="card" id="verification">(.*?)</section>', html, re.S)
    text = re.sub(r"<[^>]+>", " ", figures.group(1))
    assert re.search(r'id="roc-auc">0.91<', html)
    assert "95% interval 0.86–0.95" in text
    assert re.search(r'id="eer">12%<', html) and "(8–18%)" in text
    assert re.search(r'id="tar-at-far">64%<', html)
    assert re.search(r'id="baseline-roc-auc">0.62<', html)
    assert "fixed project holdout: 80 pairs, 40 same and 40 different" in text
    assert (
        "v1, trained on 120 labeled pairs, has a holdout ROC AUC of 0.91 (95% interval"
        " 0.86–0.95): clearly better than the cosine similarity of 8x8 pixel thumbnails (0.62)."
        in " ".join(text.split())
    )
    assert "The holdout has 40 different pairs" in text  # 1% cannot be measured on 40
    assert 'id="baseline-verdict"' not in html
    chart = _json_script(html, "curve-data")
    assert chart["metric"] == "ROC AUC" and chart["model"] == [0.912]
    assert chart["model_interval"] == [[0.861, 0.952]] and chart["baseline"] == [0.62]


def test_the_verification_sentence_follows_the_interval():
    point = {
        "version": 2,
        "labels_used": 40,
        "roc_auc": 0.7,
        "roc_auc_interval": [0.55, 0.83],
        "baseline_roc_auc": 0.62,
        "baseline_name": BASELINE["name"],
        "far_resolution": 0.005,
    }
    summary = verification_summary([{"roc_auc": None}, point])
    assert summary["verdict"] == "level" and summary["far_note"] is None
    assert (
        "not clearly better than the cosine similarity of 8x8 pixel thumbnails"
        in (summary["message"])
    )
    no_interval = verification_summary([{**point, "roc_auc_interval": None}])
    assert "too few pairs for an interval" in no_interval["message"]
    assert verification_summary([{"roc_auc": None, "balanced_accuracy": 0.8}]) is None


def test_the_models_page_lists_versions_by_their_verification_figures(pair_project):
    _version(pair_project)
    html = client_as(pair_project, Role.ENGINEER).get("/projects/faces/models/").content.decode()

    versions = re.search(r'<table class="list" id="versions">(.*?)</table>', html, re.S).group(1)
    assert "ROC AUC (holdout)" in versions and "Balanced acc." not in versions
    assert "0.912" in versions and "[0.86–0.95], n=80" in versions and "0.620" in versions
    card = re.search(r'<section class="card" id="pair-metrics">(.*?)</section>', html, re.S)
    text = " ".join(re.sub(r"<[^>]+>", " ", card.group(1)).split())
    assert "TAR at FAR 1% 0.640" in text and "Equal error rate 0.124 [0.08–0.18] 0.410" in text
    assert "fixed project holdout: 80 pairs" in text
    assert "The holdout has 40 different pairs" in text
    assert "confusion matrix" not in html and 'id="calibration"' not in html


def test_the_label_review_shows_both_images_of_contradicting_pairs(import_root, pair_project):
    html = client_as(pair_project, Role.ENGINEER).get("/projects/faces/label-review/")
    assert "No pair labels contradict each other" in html.content.decode()

    folder = import_root / "chain"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(png_bytes(10 + i, size=24))
    (folder / "pairs.csv").write_text(
        "left,right,label\n0.png,1.png,same\n1.png,2.png,same\n0.png,2.png,different\n"
    )
    project = project_create(name="Chain", created_by=None, task_type="pair_verification")
    import_job_run(
        import_job_id=import_job_create(
            project=project, path=str(folder / "pairs.csv"), enqueue=False
        ).pk
    )
    html = client_as(project, Role.ENGINEER).get("/projects/chain/label-review/")
    html = html.content.decode()
    assert "Pair labels that contradict each other" in html
    for item in Item.objects.filter(project=project):
        assert f'src="/api/v1/items/{item.pk}/file/?image=1"' in html

"""An engineer browses a pair project after its first loop: each gallery tile shows both
images of a pair, its label and the model's p(same); the overview shows the holdout's ROC AUC
with its interval, EER and TAR at FAR 1% beside the baseline's ROC AUC, and the models page
lists the version by them."""

import re

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import Item
from loupe.datasets.services import import_job_create, import_job_run
from loupe.learning.models import ModelVersion, Prediction
from loupe.learning.scoring import scoring_chunk_execute, scoring_run_create
from loupe.learning.selection import selection_round_create
from loupe.learning.training import training_run_create, training_run_execute
from loupe.projects.services import project_create
from ml.synthetic_faces import make_faces_imagefolder
from tests.browser.pages import log_in, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _faces_folder(root):
    """Twelve people of four photos each; the last four people's photos loose (pool)."""
    made = make_faces_imagefolder(root, identities=12, images_per_identity=4, image_size=32, seed=3)
    for name in made["identities"][8:]:
        for path in sorted((root / name).iterdir()):
            path.rename(root / f"{name}-{path.name}")
        (root / name).rmdir()


def _trained_pair_project(import_root):
    """Imported, trained once, the pool scored and a batch selected, through the services."""
    folder = import_root / "faces"
    folder.mkdir()
    _faces_folder(folder)
    project = project_create(
        name="Gate faces",
        created_by=None,
        task_type="pair_verification",
        image_size=32,
        batch_size=12,
        holdout_fraction=0.3,
        train_epochs=2,
        control_fraction=0.2,
    )
    job = import_job_create(project=project, path=str(folder), enqueue=False)
    assert import_job_run(import_job_id=job.pk).status == "succeeded"
    run = training_run_execute(
        training_run_id=training_run_create(project=project, enqueue=False).pk
    )
    assert run.status == "succeeded", run.error
    version = ModelVersion.objects.get(training_run=run)
    scoring = scoring_run_create(model_version=version, enqueue=False)
    for chunk in scoring.chunks.order_by("index"):
        scoring_chunk_execute(chunk_id=chunk.pk)
    selection_round_create(project=project, scoring_run=scoring)
    return project, version


def _all_images_decoded(page):
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.tile img'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=15_000,
    )


def test_pairs_show_both_images_their_label_and_p_same_and_the_overview_its_figures(
    live_server, page, screenshot, import_root, settings
):
    settings.LOUPE_MIN_TRAIN_STEPS = 40
    project, version = _trained_pair_project(import_root)
    member(project, "erin", Role.ENGINEER)
    page.set_viewport_size({"width": 1280, "height": 900})

    log_in(page, live_server, "erin")
    page.click("text=Gate faces")
    page.click("nav.tabs >> text=Items")
    page.select_option("select[name=order]", "uncertain")
    page.click("text=Filter")
    page.wait_for_selector(".tile .pair img")
    _all_images_decoded(page)

    # Every tile is a pair: its two images, side by side, served through the API.
    tiles = page.locator(".tile")
    assert tiles.count() > 0
    first = tiles.first
    assert first.locator(".pair img").count() == 2
    item = Item.objects.get(pk=int(first.get_attribute("data-item")))
    sources = [first.locator(".pair img").nth(i).get_attribute("src") for i in range(2)]
    assert sources == [f"/api/v1/items/{item.pk}/file/", f"/api/v1/items/{item.pk}/file/?image=1"]
    left, right = (first.locator(".pair img").nth(i).bounding_box() for i in range(2))
    assert abs(left["y"] - right["y"]) < 1 and right["x"] >= left["x"] + left["width"]
    # The most uncertain pair shows the p(same) of the latest prediction.
    p_same = Prediction.objects.get(item=item, model_version=version).probs[1]
    shown = first.locator(".p-same").inner_text()
    assert re.fullmatch(r"p\(same\) \d+%", shown)
    assert abs(int(shown.split()[1].rstrip("%")) - 100 * p_same) <= 1
    assert "Each tile is a pair" in page.inner_text("#pair-hint")
    screenshot("pair-gallery")

    # Labeled pairs show their label, same or different.
    page.select_option("select[name=order]", "newest")
    page.select_option("select[name=label]", "same")
    page.click("text=Filter")
    page.wait_for_selector(".tile .pair img")
    _all_images_decoded(page)
    labels = page.locator(".tile .label").all_inner_texts()
    assert labels and set(labels) == {"same"}
    screenshot("pair-gallery-same")

    # The overview: the latest version's holdout figures beside the baseline's ROC AUC.
    metrics, baseline = version.metrics, version.baseline_metrics
    page.click("nav.tabs >> text=Overview")
    page.wait_for_selector("#verification")
    assert page.inner_text("#roc-auc") == f"{metrics['roc_auc']:.2f}"
    low, high = metrics["intervals"]["roc_auc"]
    figures = page.inner_text("#verification")
    assert f"95% interval {low:.2f}–{high:.2f}" in figures
    assert page.inner_text("#eer") == f"{round(metrics['eer'] * 100)}%"
    assert page.inner_text("#tar-at-far") == f"{round(metrics['tar_at_far_1pct'] * 100)}%"
    assert page.inner_text("#baseline-roc-auc") == f"{baseline['roc_auc']:.2f}"
    assert "thumbnails" in figures and metrics["holdout"] in page.inner_text("#holdout-words")
    assert f"v{version.version}, trained on {version.labels_used} labeled pairs" in figures
    page.wait_for_function("document.querySelector('#curve-chart').width > 0")
    assert page.locator("#baseline-verdict").count() == 0  # no balanced-accuracy verdict
    # Drift embeds the labeled pairs as scoring embedded the pool's: both images each.
    page.wait_for_selector("#drift table", timeout=30_000)
    assert "labeled vs pool" in page.inner_text("#drift")
    assert "could not embed" not in page.inner_text("#drift")
    screenshot("pair-overview")

    # The models page lists the version by the same figures.
    page.click("nav.tabs >> text=Models")
    page.wait_for_selector("#pair-metrics")
    assert f"{metrics['roc_auc']:.3f}" in page.inner_text("#versions")
    assert "TAR at FAR 1%" in page.inner_text("#pair-metrics")
    page.wait_for_function("document.querySelector('#curve-chart').width > 0")
    screenshot("pair-models")

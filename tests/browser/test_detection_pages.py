"""An engineer browses a detection project after its first loop: the gallery draws each
page's true boxes and the model's predicted boxes (dashed, the class as each box's title)
over the page, a page opens large with its class names, and the overview shows the boxes
per class against the targets and the holdout mAP@0.5 per class with its support."""

import json
import shutil
from pathlib import Path

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import Item, Split
from loupe.datasets.services import import_job_create, import_job_run
from loupe.insights.detection import detection_box_counts
from loupe.labeling.models import GroundTruth
from loupe.learning.models import ModelVersion, Prediction
from loupe.learning.scoring import scoring_chunk_execute, scoring_run_create
from loupe.learning.selection import selection_round_create
from loupe.learning.training import training_run_create, training_run_execute
from loupe.projects.selectors import project_classes
from loupe.projects.services import label_classes_set, project_create
from loupe.tasktypes.object_detection import answer_boxes, box_threshold
from ml.synthetic_scores import make_score_pages
from tests.browser.pages import log_in, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/work/helpers/shots")


@pytest.fixture
def shot(page, tmp_path):
    """Saves a full-page screenshot under the test's tmp dir and a copy for people to see."""

    def take(name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if SHOTS.parent.is_dir():
            SHOTS.mkdir(exist_ok=True)
            shutil.copy(path, SHOTS / path.name)
        return path

    return take


def _trained_detection_project(import_root):
    """Ten score pages, six labeled (COCO) and four in the pool, trained once, the pool
    scored and a batch selected, through the services; class targets in boxes."""
    folder = import_root / "scores"
    make_score_pages(folder, pages=10, width=384, height=256, interline=(5.0, 5.5), seed=5)
    coco = json.loads((folder / "annotations.json").read_text())
    pool = {i["id"] for i in coco["images"][6:]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] not in pool]
    (folder / "annotations.json").write_text(json.dumps(coco))
    project = project_create(
        name="Score pages",
        created_by=None,
        task_type="object_detection",
        batch_size=3,
        holdout_fraction=0.3,
        control_fraction=0.34,
    )
    job = import_job_create(project=project, path=str(folder), enqueue=False)
    assert import_job_run(import_job_id=job.pk).status == "succeeded"
    label_classes_set(
        project=project,
        classes=[
            {"name": c.name, "target_count": 20 if i == 0 else 500}
            for i, c in enumerate(project_classes(project=project))
        ],
    )
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


def _pages_drawn(page):
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.page-boxes img'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=15_000,
    )


def _rects(tile, kind):
    return tile.locator(f"svg.boxes rect.{kind}")


def test_detection_pages_show_their_boxes_and_the_overview_its_per_class_figures(
    live_server, page, shot, import_root, settings
):
    settings.LOUPE_MIN_TRAIN_STEPS = 30
    project, version = _trained_detection_project(import_root)
    member(project, "dana", Role.ENGINEER)
    page.set_viewport_size({"width": 1280, "height": 900})

    log_in(page, live_server, "dana")
    page.click("text=Score pages")
    page.click("nav.tabs >> text=Items")
    page.wait_for_selector(".tile .page-boxes svg.boxes")
    _pages_drawn(page)
    assert "true boxes" in page.inner_text("#boxes-legend")
    assert f"model v{version.version}" in page.inner_text("#boxes-legend")

    # Every labeled page draws its true boxes, every scored page the model's, one rect each.
    tiles = page.locator(".tile")
    assert tiles.count() == Item.objects.filter(project=project).count()
    seen_truth = seen_predicted = 0
    for i in range(tiles.count()):
        tile = tiles.nth(i)
        item = Item.objects.get(pk=int(tile.get_attribute("data-item")))
        truth = GroundTruth.objects.filter(item=item).first()
        want_truth = len(answer_boxes(truth.answer)) if truth else 0
        prediction = Prediction.objects.filter(item=item, model_version=version).first()
        # The model's boxes it is sure enough to show (its holdout's best box threshold).
        shown = box_threshold(version.metrics)
        want_predicted = sum(b[5] >= shown for b in prediction.boxes) if prediction else 0
        assert _rects(tile, "truth").count() == want_truth
        assert _rects(tile, "predicted").count() == want_predicted
        seen_truth += want_truth
        seen_predicted += want_predicted
        if truth:
            assert f"{want_truth} true box" in tile.inner_text()
        if prediction:
            assert f"model: {want_predicted} box" in tile.inner_text()
    assert seen_truth > 0 and seen_predicted > 0
    # The boxes sit on the page: the first true box where its pixels say, scaled to the tile.
    labeled = page.locator(".tile:has(svg.boxes rect.truth)").first
    item = Item.objects.get(pk=int(labeled.get_attribute("data-item")))
    first = answer_boxes(GroundTruth.objects.get(item=item).answer)[0]
    image = labeled.locator(".page-boxes img").bounding_box()
    rect = _rects(labeled, "truth").first
    drawn = rect.bounding_box()
    scale = image["width"] / item.width
    assert abs(image["height"] - item.height * scale) < 1.5  # the page keeps its shape
    assert abs(drawn["x"] - (image["x"] + first.x * scale)) < 2.5
    assert abs(drawn["y"] - (image["y"] + first.y * scale)) < 2.5
    assert rect.locator("title").text_content() == f"true: {first.label}"
    # Predicted boxes are dashed, in another colour, with their class as title.
    scored = page.locator(".tile:has(svg.boxes rect.predicted)").first
    predicted = _rects(scored, "predicted").first
    style = predicted.evaluate(
        "r => [getComputedStyle(r).strokeDasharray, getComputedStyle(r).stroke]"
    )
    truth_stroke = rect.evaluate("r => getComputedStyle(r).stroke")
    assert style[0] not in ("none", "") and style[1] != truth_stroke
    assert predicted.locator("title").text_content().startswith(f"model v{version.version}: ")
    assert predicted.get_attribute("data-label") in version.class_names
    shot("detection-gallery")

    # A page opens large with its class names written by the boxes.
    labeled.locator("a.page-link").click()
    page.wait_for_selector("#page-detail svg.boxes")
    _pages_drawn(page)
    truths = answer_boxes(GroundTruth.objects.get(item=item).answer)
    assert page.locator("#page-detail rect.truth").count() == len(truths)
    written = page.locator("#page-detail text.truth").all_text_contents()
    assert sorted(written) == sorted(b.label for b in truths)
    assert page.locator("#page-detail .page-boxes").bounding_box()["width"] > 2 * image["width"]
    assert f"{len(truths)} true box" in page.inner_text("#true-boxes caption")
    shot("detection-page")

    # A scored page: the model's boxes with their class names, which one switch hides.
    page.go_back()
    scored_id = int(scored.get_attribute("data-item"))
    scored.locator("a.page-link").click()
    page.wait_for_selector("#page-detail svg.boxes")
    _pages_drawn(page)
    boxes = Prediction.objects.get(item_id=scored_id, model_version=version).boxes
    boxes = [b for b in boxes if b[5] >= box_threshold(version.metrics)]
    assert boxes
    assert page.locator("#page-detail rect.predicted").count() == len(boxes)
    assert page.locator("#page-detail text.predicted").count() == len(boxes)
    assert f"{len(boxes)} predicted box" in page.inner_text("#predicted-boxes caption")
    shot("detection-page-scored")
    page.uncheck("#show-predicted")
    assert not page.locator("#page-detail rect.predicted").first.is_visible()

    # The overview: boxes per class against the targets, and the holdout mAP@0.5 per class.
    page.click("nav.tabs >> text=Overview")
    page.wait_for_selector("#box-counts")
    counts = {r["name"]: r for r in detection_box_counts(project=project)["classes"]}
    for name, row in counts.items():
        cells = page.locator(f"#box-counts tr[data-class='{name}']")
        assert cells.locator("[data-field=boxes]").inner_text() == str(row["boxes"])
        assert cells.locator("[data-field=holdout]").inner_text() == str(row["holdout"])
        assert cells.locator("[data-field=target]").inner_text() == str(row["target"])
    train_boxes = sum(
        len(answer_boxes(g.answer))
        for g in GroundTruth.objects.filter(project=project, item__split=Split.TRAIN)
    )
    assert sum(r["train"] for r in counts.values()) == train_boxes > 0
    met = sum(1 for r in counts.values() if r["boxes"] >= r["target"])
    assert page.inner_text("#box-targets-met") == f"{met} / {len(counts)}"

    metrics = version.metrics
    assert page.inner_text("#map50") == f"{metrics['map50']:.3f}"
    low, high = metrics["intervals"]["map50"]
    assert f"95% interval {low:.3f}–{high:.3f}" in page.inner_text("#detection-holdout")
    assert metrics["holdout"] in page.inner_text("#holdout-words")
    for row in metrics["per_class"]:
        cells = page.locator(f"#class-ap tr[data-class='{row['class']}']")
        assert cells.locator("[data-field=support]").inner_text() == str(row["support"])
        ap = cells.locator("[data-field=ap50]").inner_text()
        assert ap == ("–" if row["ap50"] is None else f"{row['ap50']:.3f}")
    assert page.locator("#class-progress").count() == 0  # no labels-per-class table
    shot("detection-overview")

    # The models page: the version's detection figures, and its class confusions.
    page.click("nav.tabs >> text=Models")
    page.wait_for_selector("#versions")
    header = page.inner_text("#versions thead")
    assert "mAP@0.5 (holdout)" in header and "Balanced acc." not in header
    row = page.inner_text("#versions tbody tr")
    assert f"{metrics['map50']:.3f}" in row and f"{metrics['n_pages']} pages" in row
    shown = metrics["box_threshold"]["threshold"]
    assert f"{shown:.2f}" in row
    shot("detection-models")

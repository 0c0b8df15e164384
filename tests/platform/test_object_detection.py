"""Object detection on the platform: COCO and YOLO imports with bad boxes rejected one by
one, exports that give the boxes back, ground truth from several annotators' boxes, and a
loop of training, scoring, selection and push through the seam with boxes as
pre-annotations."""

import io
import json
import shutil
import zipfile

import pytest

from loupe.accounts.models import Role
from loupe.datasets.models import ImportRejection, Item, ItemState, Split
from loupe.datasets.services import import_job_create, import_job_run
from loupe.labeling import ls_payloads
from loupe.labeling.events import events_apply
from loupe.labeling.models import GroundTruth
from loupe.labeling.selectors import ground_truth_counts
from loupe.learning.models import ModelVersion, Prediction, SelectionRound
from loupe.learning.scoring import scoring_chunk_execute, scoring_run_create
from loupe.learning.selection import selection_round_create
from loupe.learning.training import training_run_create, training_run_execute
from loupe.projects.selectors import project_classes, strategy_name
from loupe.projects.services import label_classes_set, project_create
from loupe.tasktypes import Vote, task_type_of
from loupe.tasktypes.object_detection import answer_boxes, coco_export
from ml.detection_io import parse_coco
from ml.synthetic_scores import make_score_pages
from tests.factories import MembershipFactory, UserFactory
from tests.platform.labeling.builders import annotation_body, webhook

DETECTION = "object_detection"


def _pages(root, *, pages=8, seed=1):
    return make_score_pages(
        root, pages=pages, width=384, height=256, interline=(5.0, 5.5), seed=seed
    )


def _project(**settings):
    return project_create(
        name="Scores", created_by=None, task_type=DETECTION, batch_size=4, **settings
    )


def _import(project, path):
    job = import_job_run(
        import_job_id=import_job_create(project=project, path=str(path), enqueue=False).pk
    )
    assert job.status == "succeeded", job.error
    return job


def _boxes_by_page(coco: dict) -> dict[str, list[tuple]]:
    """Per page (its original file name), its boxes as (class, x, y, w, h) rounded."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {i["id"]: i["file_name"] for i in coco["images"]}
    out: dict[str, list[tuple]] = {name: [] for name in files.values()}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        out[files[ann["image_id"]]].append(
            (names[ann["category_id"]], round(x, 1), round(y, 1), round(w, 1), round(h, 1))
        )
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.django_db
def test_a_detection_project_takes_the_coco_classes_and_imports_labeled_and_pool_pages(
    import_root,
):
    folder = import_root / "scores"
    made = _pages(folder)
    coco = json.loads((folder / "annotations.json").read_text())
    # Two pages nobody labeled yet, and three bad boxes on the first page.
    unlabeled = {coco["images"][-1]["id"], coco["images"][-2]["id"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] not in unlabeled]
    first = coco["images"][0]["id"]
    coco["annotations"] += [
        {"id": 90001, "image_id": first, "category_id": 1, "bbox": [5000, 10, 8, 8]},
        {"id": 90002, "image_id": first, "category_id": 1, "bbox": [10, 10, 0, 8]},
        {"id": 90003, "image_id": first, "category_id": 999, "bbox": [10, 10, 8, 8]},
    ]
    (folder / "annotations.json").write_text(json.dumps(coco))
    (folder / "images" / "broken.png").write_bytes(b"\x89PNG not a png")
    coco["images"].append({"id": 777, "file_name": "images/broken.png", "width": 9, "height": 9})
    (folder / "annotations.json").write_text(json.dumps(coco))

    project = _project()
    assert strategy_name(project) == "box_mean"
    job = _import(project, folder)

    assert [c.name for c in project_classes(project=project)] == made["classes"]
    reasons = list(ImportRejection.objects.filter(job=job).values_list("path", "reason"))
    assert any("outside_image" in r for _, r in reasons)
    assert any("zero_area" in r for _, r in reasons)
    assert any("unknown_class" in r for _, r in reasons)
    assert any(p == "images/broken.png" and "corrupt" in r for p, r in reasons)
    assert job.rejected == len(reasons) == 4
    items = Item.objects.filter(project=project)
    assert job.imported == items.count() == 8
    assert job.labeled == 6
    pool = items.filter(split=Split.POOL)
    assert pool.count() == 2 and all(i.state == ItemState.UNLABELED for i in pool)
    # The good boxes of the page with bad ones are all there; a page's size is the image's.
    truth = GroundTruth.objects.get(item__original_name=coco["images"][0]["file_name"])
    kept = [a for a in coco["annotations"] if a["image_id"] == first and a["id"] < 90000]
    assert len(answer_boxes(truth.answer)) == len(kept) > 0
    assert truth.label_class is None and truth.decided_by == "imported"
    assert truth.item.width == 384 and truth.item.height == 256
    # Page counts: labeled pages are counted without a class.
    counts = ground_truth_counts(project)
    assert counts[None]["train"] + counts[None]["holdout"] == 6

    # Importing again adds nothing.
    again = _import(project, folder)
    assert again.imported == 0 and again.duplicates == 8


@pytest.mark.django_db
def test_coco_export_gives_back_the_imported_boxes_page_by_page(import_root):
    folder = import_root / "scores"
    _pages(folder, pages=5, seed=2)
    project = _project()
    _import(project, folder)
    original = json.loads((folder / "annotations.json").read_text())

    exported = json.loads(b"".join(coco_export(project=project)))
    assert [c["name"] for c in exported["categories"]] == [
        c["name"] for c in original["categories"]
    ]
    # The export names each page by its item id and original name.
    renamed = {i["file_name"].split("_", 1)[1]: i["file_name"] for i in exported["images"]}
    want = {k.rsplit("/", 1)[-1]: v for k, v in _boxes_by_page(original).items()}
    got = {k.split("_", 1)[1]: v for k, v in _boxes_by_page(exported).items()}
    assert set(renamed) == set(want) and got == want
    # And it reads back as the same pages without a rejected box.
    parsed = parse_coco(exported)
    assert not parsed.rejected and parsed.n_boxes == len(original["annotations"])


@pytest.mark.django_db
def test_a_yolo_folder_imports_and_the_yolo_zip_gives_its_labels_back(
    import_root, tmp_path, api_client
):
    # A YOLO folder made from a COCO one by the project's own export, through the API.
    source = tmp_path / "source"
    _pages(source, pages=4, seed=3)
    first = _project(slug="first")
    _import(first, _copy_into(import_root, source, "coco"))
    engineer = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=first, user=engineer, role=Role.ENGINEER)
    api_client.force_authenticate(engineer)
    response = api_client.get("/api/v1/projects/first/exports/yolo.zip")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].endswith('first-yolo.zip"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert len([n for n in archive.namelist() if n.startswith("images/")]) == 4
    coco = api_client.get("/api/v1/projects/first/exports/ground-truth.coco.json")
    assert coco.status_code == 200
    assert len(json.loads(b"".join(coco.streaming_content))["images"]) == 4
    yolo = import_root / "yolo"
    archive.extractall(yolo)
    assert (yolo / "data.yaml").is_file() and len(list((yolo / "labels").iterdir())) == 4
    # A label line of an unknown class index is rejected, the rest kept.
    label_file = sorted((yolo / "labels").iterdir())[0]
    label_file.write_text(label_file.read_text() + "99 0.5 0.5 0.1 0.1\n")

    second = _project(slug="second")
    job = _import(second, yolo)
    assert job.labeled == 4
    assert ImportRejection.objects.filter(job=job, reason__contains="unknown_class").count() == 1
    # Each export puts the item id before the page's name: pages are matched by the name.
    exported = {
        k[k.index("page_") :]: v
        for k, v in _boxes_by_page(json.loads(b"".join(coco_export(project=second)))).items()
    }
    before = {
        k[k.index("page_") :]: v
        for k, v in _boxes_by_page(json.loads(b"".join(coco_export(project=first)))).items()
    }
    # YOLO keeps 6 decimals of the page size: boxes agree to a tenth of a pixel or so.
    assert set(exported) == set(before)
    for name, boxes in before.items():
        assert [b[0] for b in exported[name]] == [b[0] for b in boxes]
        for a, b in zip(exported[name], boxes, strict=True):
            assert max(abs(p - q) for p, q in zip(a[1:], b[1:], strict=True)) <= 0.2


@pytest.mark.django_db
def test_box_exports_of_a_classification_project_are_refused_with_the_formats_it_has(
    api_client,
):
    project = project_create(name="Parts", created_by=None, classes=["ok", "defect"])
    engineer = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=engineer, role=Role.ENGINEER)
    api_client.force_authenticate(engineer)
    for name in ("yolo.zip", "ground-truth.coco.json"):
        response = api_client.get(f"/api/v1/projects/{project.slug}/exports/{name}")
        assert response.status_code == 400
        assert "only object_detection projects" in response.json()["error"]["message"]
    detection = _project()
    MembershipFactory(project=detection, user=engineer, role=Role.ENGINEER)
    refused = api_client.get(f"/api/v1/projects/{detection.slug}/exports/imagefolder.zip")
    assert refused.status_code == 400 and "COCO" in refused.json()["error"]["message"]


def _copy_into(root, source, name):
    target = root / name
    shutil.copytree(source, target)
    return target


@pytest.mark.django_db
def test_a_zip_of_a_coco_folder_imports_like_the_folder(import_root, tmp_path):
    source = tmp_path / "pages"
    _pages(source, pages=3, seed=4)
    archive = import_root / "pages.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                zf.write(path, f"pages/{path.relative_to(source).as_posix()}")
    project = _project()
    job = _import(project, archive)
    assert job.imported == 3 and job.labeled == 3


@pytest.mark.django_db
def test_a_malformed_coco_file_fails_the_import_with_its_reason_and_imports_nothing(
    import_root,
):
    folder = import_root / "bad"
    _pages(folder, pages=2)
    (folder / "annotations.json").write_text('{"images": [ oops')
    project = _project()
    job = import_job_run(
        import_job_id=import_job_create(project=project, path=str(folder), enqueue=False).pk
    )
    assert job.status == "failed" and "annotations.json is not readable JSON" in job.error
    assert not Item.objects.filter(project=project).exists()


def _region(x, y, w, h, label, *, size=(384, 256)):
    return ls_payloads.rectangles_result(
        [ls_payloads.Box(x, y, w, h, label)], image_width=size[0], image_height=size[1]
    )[0]


def test_several_annotators_boxes_become_ground_truth_by_matching_them():
    kind = task_type_of(type("P", (), {"task_type": DETECTION})())
    a = kind.answer_value([_region(10, 10, 20, 20, "gClef"), _region(100, 50, 8, 8, "keySharp")])
    b = kind.answer_value([_region(11, 10, 20, 21, "gClef"), _region(101, 51, 8, 8, "keySharp")])
    c = kind.answer_value([_region(11, 10, 20, 21, "gClef")])
    assert kind.read_answer([_region(10, 10, 20, 20, "gClef")]) == ["gClef"]
    assert kind.answer_class([_region(10, 10, 20, 20, "gClef")], {"gClef": 1}) is None

    waiting = kind.decide([Vote("ann", None, answer=a)], overlap=2)
    assert waiting.state == ItemState.IN_ANNOTATION and not waiting.decided
    agree = kind.decide([Vote("ann", None, answer=a), Vote("bob", None, answer=b)], overlap=2)
    assert agree.state == ItemState.LABELED and agree.decided_by == "majority"
    assert agree.agreement == 1.0 and len(answer_boxes(agree.answer)) == 2
    assert agree.answer["agreement_per_class"] == {"gClef": 1.0, "keySharp": 1.0}
    # One annotator missed a box: agreement drops, and the page waits for review.
    split = kind.decide([Vote("ann", None, answer=a), Vote("cid", None, answer=c)], overlap=2)
    assert split.needs_review and split.state == ItemState.IN_ANNOTATION
    assert split.agreement < 0.8
    # Everyone skipped: skipped. An empty answer is a page with nothing on it.
    skipped = kind.decide([Vote("ann", None, cancelled=True)], overlap=1)
    assert skipped.state == ItemState.SKIPPED
    empty = kind.decide([Vote("ann", None, answer=kind.answer_value([]))], overlap=1)
    assert empty.state == ItemState.LABELED and answer_boxes(empty.answer) == []


def _answer(annotation_id, pick, result, *, user):
    annotation, task = annotation_body(
        annotation_id, task_id=pick.ls_task_id, item_id=pick.item_id, user=user, result=result
    )
    return webhook("ANNOTATION_CREATED", 7, annotation=annotation, task=task)


@pytest.mark.django_db
def test_a_detection_loop_trains_scores_selects_pushes_boxes_and_reads_boxes_back(
    import_root, settings, label_studio_elsewhere
):
    settings.LOUPE_MIN_TRAIN_STEPS = 30
    folder = import_root / "scores"
    _pages(folder, pages=14, seed=5)
    coco = json.loads((folder / "annotations.json").read_text())
    pool_ids = {i["id"] for i in coco["images"][6:]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] not in pool_ids]
    (folder / "annotations.json").write_text(json.dumps(coco))
    project = _project(holdout_fraction=0.3, control_fraction=0.25)
    project.ls_project_id = 7
    project.save(update_fields=["ls_project_id"])
    _import(project, folder)
    assert Item.objects.filter(project=project, split=Split.HOLDOUT).exists()

    run = training_run_execute(
        training_run_id=training_run_create(project=project, enqueue=False).pk
    )
    assert run.status == "succeeded", run.error
    version = ModelVersion.objects.get(training_run=run)
    assert version.model_kind == "centernet"
    metrics = version.metrics
    assert 0.0 <= metrics["map50"] <= 1.0 and "per_class" in metrics and "map" in metrics
    assert metrics["n_pages"] >= 1 and "pages with" in metrics["holdout"]
    # The score from which boxes are shown is chosen on the holdout, by the F1 of boxes.
    shown = metrics["box_threshold"]
    assert 0.05 <= shown["threshold"] <= 0.95 and shown["f1"] is not None
    summary = task_type_of(project).holdout_summary(metrics, version.baseline_metrics)
    assert summary.startswith(f"holdout mAP@0.5 {metrics['map50']:.3f}")
    assert "training pages" in summary and "boxes" in summary
    # The learning curve (API and pages) reads mAP@0.5 and its interval.
    from loupe.insights.curves import learning_curve

    point = learning_curve(project=project)["versions"][0]
    assert point["map50"] == metrics["map50"] and point["holdout_size"] == metrics["n_pages"]
    assert point["map50_interval"] == metrics["intervals"]["map50"]

    scoring = scoring_run_create(model_version=version, enqueue=False)
    for chunk in scoring.chunks.order_by("index"):
        scoring_chunk_execute(chunk_id=chunk.pk)
    scoring.refresh_from_db()
    assert scoring.status == "succeeded", scoring.error
    predictions = list(Prediction.objects.filter(model_version=version))
    assert len(predictions) == 8
    for prediction in predictions:
        assert 0.0 <= prediction.uncertainty <= 1.0
        assert prediction.confidence == pytest.approx(1.0 - prediction.uncertainty, abs=1e-4)
        assert isinstance(prediction.boxes, list)
        for _x, _y, w, h, cls, score in prediction.boxes:
            assert w > 0 and h > 0 and 0 <= cls < len(version.class_names) and score > 0

    chosen = selection_round_create(project=project, scoring_run=scoring)
    picks = list(chosen.items.select_related("item").order_by("rank"))
    assert chosen.strategy == "box_mean" and len(picks) == 4
    assert any(p.is_control and "at random" in p.reason for p in picks)
    assert all("box" in p.reason for p in picks)
    by_item = {p.item_id: p.uncertainty for p in predictions}

    tasks = push_tasks_for(chosen)
    boxed = [(pick, task) for pick, task in tasks if task.prediction is not None]
    assert len(boxed) == len(tasks), "every pick of a scored page carries the model's boxes"
    pick, task = boxed[0]
    payload = ls_payloads.task_payload(task)
    regions = payload["predictions"][0]["result"]
    stored = Prediction.objects.get(item_id=pick.item_id, model_version=version).boxes
    # Only the boxes at or above the version's threshold are pushed.
    assert len(regions) == sum(1 for b in stored if b[5] >= shown["threshold"])
    assert all(r["score"] >= shown["threshold"] for r in regions)
    assert payload["predictions"][0]["score"] == pytest.approx(by_item[pick.item_id], abs=1e-3)
    if regions:
        region = regions[0]
        assert region["type"] == "rectanglelabels" and "score" in region
        assert region["original_width"] == 384 and region["original_height"] == 256

    # An expert corrects the boxes: they become the page's ground truth.
    for offset, (p, _) in enumerate(tasks):
        p.ls_task_id = 900 + offset
        p.save(update_fields=["ls_task_id"])
    SelectionRound.objects.filter(pk=chosen.pk).update(status=SelectionRound.Status.PUSHED)
    Item.objects.filter(pk__in=[p.item_id for p, _ in tasks]).update(state=ItemState.IN_ANNOTATION)
    answer = [_region(20, 30, 12, 18, "gClef"), _region(200, 40, 6, 6, "noteheadBlack")]
    events_apply(payload=_answer(1, tasks[0][0], answer, user=1))
    truth = GroundTruth.objects.get(item_id=tasks[0][0].item_id)
    assert truth.label_class is None
    assert [(b.label, round(b.x), round(b.w)) for b in answer_boxes(truth.answer)] == [
        ("gClef", 20, 12),
        ("noteheadBlack", 200, 6),
    ]
    assert Item.objects.get(pk=tasks[0][0].item_id).state == ItemState.LABELED


def push_tasks_for(selection_round):
    from loupe.labeling.sync import push_tasks

    return push_tasks(selection_round)


@pytest.mark.django_db
def test_a_class_with_boxes_in_ground_truth_cannot_be_removed(import_root):
    folder = import_root / "scores"
    _pages(folder, pages=2)
    project = _project()
    _import(project, folder)
    names = [c.name for c in project_classes(project=project)]
    used = {
        b.label for g in GroundTruth.objects.filter(project=project) for b in answer_boxes(g.answer)
    }
    keep = [n for n in names if n not in used]
    from loupe.errors import ApplicationError

    with pytest.raises(ApplicationError, match="has labels"):
        label_classes_set(project=project, classes=keep)


@pytest.mark.django_db
def test_augmentations_are_a_project_setting_the_detector_trains_with():
    from dataclasses import replace

    from loupe.errors import ApplicationError
    from loupe.projects.services import project_update
    from ml.detection_augment import DetectionAugment
    from ml.tasks.object_detection import _detection_config
    from ml.training import TrainConfig

    project = _project(augmentations={"hflip": 0.5, "blur": 0})
    run = training_run_create(project=project, enqueue=False)
    assert run.config["augmentations"] == {"hflip": 0.5, "blur": 0}
    options = task_type_of(project).train_options(config=run.config)
    assert options["augment"] == replace(DetectionAugment(), hflip=0.5, blur=0)
    detector = _detection_config(TrainConfig(min_steps=20, **options))
    assert detector.augment.hflip == 0.5 and detector.augment.blur == 0 and detector.steps == 20
    # No change: music symbols are never mirrored.
    plain = _detection_config(TrainConfig(**task_type_of(project).train_options(config={})))
    assert plain.augment.hflip == 0.0 and plain.augment == DetectionAugment()
    for bad, words in (
        ({"rotate": 1}, "Unknown augmentation 'rotate'"),
        ({"blur": 2}, "probability"),
        ({"noise": -1}, "at least 0"),
    ):
        with pytest.raises(ApplicationError, match=words):
            project_update(project=project, augmentations=bad)


@pytest.mark.django_db
def test_the_gallery_filter_by_class_finds_the_pages_with_a_box_of_it(import_root):
    from loupe.datasets.selectors import item_list

    folder = import_root / "scores"
    _pages(folder, pages=4, seed=6)
    coco = json.loads((folder / "annotations.json").read_text())
    # Only the first page keeps its fClef boxes (one is drawn there if it had none).
    fclef = next(c["id"] for c in coco["categories"] if c["name"] == "fClef")
    first = coco["images"][0]["id"]
    coco["annotations"] = [
        a for a in coco["annotations"] if a["category_id"] != fclef or a["image_id"] == first
    ]
    if not any(a["category_id"] == fclef for a in coco["annotations"]):
        coco["annotations"].append(
            {"id": 99999, "image_id": first, "category_id": fclef, "bbox": [5, 5, 8, 12]}
        )
    (folder / "annotations.json").write_text(json.dumps(coco))
    project = _project()
    _import(project, folder)

    found = list(item_list(project=project, filters={"label": "fClef"}))
    assert [i.original_name for i in found] == [coco["images"][0]["file_name"]]
    assert item_list(project=project, filters={"label": "noteheadBlack"}).count() == 4
    assert not item_list(project=project, filters={"label": "nothing"}).exists()

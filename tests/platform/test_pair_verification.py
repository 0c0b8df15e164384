"""Pair verification on the platform: imports that make pairs of images, the Label Studio
side of a pair, "can't tell", a loop of training, mining, scoring and selection through the
seam, and transitivity as a label check."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from loupe.datasets.models import ImportRejection, Item, ItemState, Split
from loupe.datasets.services import import_job_create, import_job_run
from loupe.errors import ApplicationError
from loupe.labeling import ls_payloads
from loupe.labeling.events import events_apply
from loupe.labeling.models import GroundTruth
from loupe.labeling.review import label_review_queue, review_reason
from loupe.labeling.sync import push_tasks
from loupe.learning.models import ModelVersion, Prediction, SelectionRound
from loupe.learning.scoring import scoring_chunk_execute, scoring_run_create
from loupe.learning.selection import selection_round_create
from loupe.learning.training import training_run_create, training_run_execute
from loupe.projects.selectors import project_classes, strategy_name
from loupe.projects.services import label_classes_set, project_create, project_update
from loupe.tasktypes import Vote, task_type_of
from loupe.tasktypes.pair_verification import pair_contradictions
from ml.synthetic_faces import make_faces_imagefolder

PAIR = "pair_verification"


def _faces(root, *, identities=10, images=4, flat_from=7):
    """Identity folders, and the images of the identities from `flat_from` on moved to the
    top of the folder (identity unknown); plus a corrupt file."""
    made = make_faces_imagefolder(
        root, identities=identities, images_per_identity=images, image_size=32, seed=3
    )
    for name in made["identities"][flat_from:]:
        for path in sorted((root / name).iterdir()):
            path.rename(root / f"{name}-{path.name}")
        (root / name).rmdir()
    (root / made["identities"][0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    return made


def _project(**settings):
    return project_create(
        name="Faces", created_by=None, task_type=PAIR, image_size=32, batch_size=12, **settings
    )


def _pairs(project):
    return list(Item.objects.filter(project=project).select_related("ground_truth"))


def _identities(item):
    return (item.metadata or {}).get("identities")


@pytest.mark.django_db
def test_a_pair_project_has_the_two_answers_as_its_classes_and_pair_defaults():
    project = _project()
    assert [c.name for c in project_classes(project=project)] == ["different", "same"]
    assert strategy_name(project) == "pair_mixed"
    with pytest.raises(ApplicationError, match="has the classes different, same"):
        label_classes_set(project=project, classes=["cat", "dog"])
    with pytest.raises(ApplicationError, match="cannot choose items of a pair_verification"):
        _project(slug="other", strategy="margin")
    # Pair training has its own member-image augmentations, not a project setting.
    with pytest.raises(ApplicationError, match="takes no augmentations"):
        project_update(project=project, augmentations={"hflip": 0})
    config = task_type_of(project).label_config(classes=[], guidelines="Ignore hair.", image_px=32)
    assert config.count("<Image ") == 2 and "$image2" in config
    assert "can't tell" in config and "Ignore hair." in config


@pytest.mark.django_db
def test_identity_folders_become_labeled_pairs_with_people_held_out_whole(import_root):
    folder = import_root / "faces"
    folder.mkdir()
    made = _faces(folder)
    project = _project(holdout_fraction=0.3)
    job = import_job_run(
        import_job_id=import_job_create(project=project, path=str(folder), enqueue=False).pk
    )

    assert job.status == "succeeded", job.error
    assert job.rejected == 1
    assert "corrupt image" in ImportRejection.objects.get(job=job).reason
    items = _pairs(project)
    labeled = [i for i in items if hasattr(i, "ground_truth")]
    assert job.imported == len(items) and job.labeled == len(labeled) > 0
    # Each image is stored once and every pair names two different images.
    images = {i.file.name for i in items} | {i.extra_files[0] for i in items}
    assert len(images) == made["n_images"] - 0  # 40 images; the corrupt one is not one
    assert all(i.file.name != i.extra_files[0] for i in items)
    # Labeled pairs: same exactly when the two identities are one, both kinds present.
    for item in labeled:
        left, right = _identities(item)
        assert (item.ground_truth.label_class.name == "same") == (left == right)
    assert {i.ground_truth.label_class.name for i in labeled} == {"same", "different"}
    # The holdout holds whole people: no identity is in a train pair and a holdout pair.
    train = {p for i in labeled if i.split == Split.TRAIN for p in _identities(i)}
    held = {p for i in labeled if i.split == Split.HOLDOUT for p in _identities(i)}
    assert held and train and not train & held
    # Images without identity wait in pool pairs, unlabeled.
    pool = [i for i in items if i.split == Split.POOL]
    assert pool and all(i.state == ItemState.UNLABELED and _identities(i) is None for i in pool)
    flat = {i.file.name for i in pool} | {i.extra_files[0] for i in pool}
    assert len(flat) >= 12  # every one of the 12 images without identity is in a pair

    # Importing again adds nothing.
    again = import_job_run(
        import_job_id=import_job_create(project=project, path=str(folder), enqueue=False).pk
    )
    assert again.imported == 0 and Item.objects.filter(project=project).count() == len(items)


def _png(value, seed):
    rng = np.random.default_rng(seed)
    pixels = np.clip(value + rng.integers(-30, 30, size=(24, 24, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db
def test_a_pair_manifest_imports_its_pairs_and_rejects_bad_rows_one_by_one(import_root):
    folder = import_root / "manifest"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(_png(40 * i + 20, i))
    (folder / "pairs.csv").write_text(
        "left,right,label,note\n"
        "0.png,1.png,same,first\n"
        "1.png,2.png,0,\n"
        "2.png,3.png,,\n"
        "0.png,3.png,maybe,\n"
        "0.png,missing.png,same,\n"
        "3.png,3.png,different,\n"
        "1.png,0.png,same,\n"
    )
    project = _project()
    job = import_job_run(
        import_job_id=import_job_create(
            project=project, path=str(folder / "pairs.csv"), enqueue=False
        ).pk
    )

    assert job.status == "succeeded", job.error
    assert (job.imported, job.labeled, job.duplicates) == (3, 2, 1)
    reasons = sorted(ImportRejection.objects.filter(job=job).values_list("reason", flat=True))
    assert reasons == [
        "a pair needs two different images",
        "file not found or unreadable",
        "the right image was rejected",
        "unknown label 'maybe': write same or different",
    ]
    by_note = {i.metadata.get("note"): i for i in Item.objects.filter(project=project)}
    assert by_note["first"].ground_truth.label_class.name == "same"
    assert Item.objects.filter(project=project, split=Split.POOL).count() == 1

    with pytest.raises(Exception, match="left and right columns"):
        (folder / "bad.csv").write_text("path,label\n0.png,same\n")
        failed = import_job_run(
            import_job_id=import_job_create(
                project=project, path=str(folder / "bad.csv"), enqueue=False
            ).pk
        )
        raise RuntimeError(failed.error)


def test_cant_tell_counts_toward_the_overlap_and_votes_for_nothing():
    kind = task_type_of(type("P", (), {"task_type": PAIR})())
    same, different = 1, 2
    assert kind.decide([Vote("a", None), Vote("b", same)], overlap=2).label == same
    assert kind.decide([Vote("a", None)], overlap=2).state == ItemState.IN_ANNOTATION
    assert kind.decide([Vote("a", None), Vote("b", None)], overlap=2).state == ItemState.SKIPPED
    tie = kind.decide([Vote("a", same), Vote("b", different)], overlap=2)
    assert tie.needs_review
    answer = [{"from_name": "label", "to_name": "image", "type": "choices",
               "value": {"choices": ["can't tell"]}}]  # fmt: skip
    assert kind.answer_class(answer, {"same": same, "different": different}) is None


def _answer(annotation_id, pick, choice, *, user):
    result = ls_payloads.choices_result([choice])
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 7},
        "annotation": {
            "id": annotation_id,
            "task": pick.ls_task_id,
            "result": result,
            "was_cancelled": False,
            "ground_truth": False,
            "completed_by": user,
            "lead_time": 3.0,
            "created_at": f"2026-01-05T09:{annotation_id // 60:02d}:{annotation_id % 60:02d}Z",
            "updated_at": f"2026-01-05T09:{annotation_id // 60:02d}:{annotation_id % 60:02d}Z",
        },
        "task": {"id": pick.ls_task_id, "data": {"loupe_item_id": pick.item_id}},
    }


@pytest.mark.django_db
def test_a_pair_loop_trains_mines_scores_selects_and_reads_answers_back(
    import_root, settings, label_studio_elsewhere
):
    settings.LOUPE_MIN_TRAIN_STEPS = 40
    folder = import_root / "faces"
    folder.mkdir()
    _faces(folder, identities=12, images=4, flat_from=8)
    project = _project(holdout_fraction=0.3, train_epochs=2, control_fraction=0.2)
    project.ls_project_id = 7
    project.save(update_fields=["ls_project_id"])
    import_job_run(
        import_job_id=import_job_create(project=project, path=str(folder), enqueue=False).pk
    )
    pool_before = Item.objects.filter(project=project, split=Split.POOL).count()

    # Train on the imported pairs: holdout figures with what they stand on, a baseline.
    run = training_run_execute(
        training_run_id=training_run_create(project=project, enqueue=False).pk
    )
    assert run.status == "succeeded", run.error
    version = ModelVersion.objects.get(training_run=run)
    assert version.model_kind == "siamese_cnn"
    metrics = version.metrics
    assert 0.0 <= metrics["roc_auc"] <= 1.0 and "eer" in metrics
    assert "pairs" in metrics["holdout"] and metrics["intervals"]["roc_auc"]
    # The imported holdout holds whole people: none of its faces is in a training pair.
    assert metrics["holdout_images"] > 0 and metrics["holdout_images_in_training"] == 0
    assert "none of which appears in a training pair" in metrics["holdout"]
    assert 0.0 < metrics["threshold_distance"] < 2.0
    assert "thumbnails" in version.baseline_metrics["name"]
    summary = task_type_of(project).holdout_summary(metrics, version.baseline_metrics)
    assert summary.startswith(f"holdout ROC AUC {metrics['roc_auc']:.3f} [")
    assert "thumbnail baseline" in summary and "EER" in summary and "pairs" in summary
    # The new version mined pairs from its embedding into the pool.
    mined = Item.objects.filter(project=project, source="mined")
    assert mined.exists() and mined.count() <= 5 * project.batch_size
    assert Item.objects.filter(project=project, split=Split.POOL).count() > pool_before
    assert all(m.metadata["mined_by_version"] == version.version for m in mined)
    # None of them asks what the imported labels already imply: two photos of one known
    # person (a chain of "same" labels joins every photo of an identity folder).
    person = {}
    for item in Item.objects.filter(project=project):
        if _identities(item):
            person.update(
                zip((item.file.name, item.extra_files[0]), _identities(item), strict=True)
            )
    implied = [m for m in mined if person.get(m.file.name, 1) == person.get(m.extra_files[0], 2)]
    assert implied == []

    # Score every pool pair; one prediction each, p(same) in probs.
    scoring = scoring_run_create(model_version=version, enqueue=False)
    for chunk in scoring.chunks.order_by("index"):
        scoring_chunk_execute(chunk_id=chunk.pk)
    scoring.refresh_from_db()
    assert scoring.status == "succeeded"
    pool = Item.objects.filter(project=project, split=Split.POOL).count()
    predictions = list(Prediction.objects.filter(model_version=version))
    assert len(predictions) == pool
    for prediction in predictions:
        p_same = prediction.probs[1]
        assert prediction.predicted_class.name == ("same" if p_same >= 0.5 else "different")

    # Select with the default: no image in two picks, reasons name distance and threshold.
    chosen = selection_round_create(project=project, scoring_run=scoring)
    picks = list(chosen.items.select_related("item").order_by("rank"))
    assert chosen.strategy == "pair_mixed" and len(picks) == 12
    strategy_picks = [p for p in picks if not p.is_control]
    members = [m for p in strategy_picks for m in (p.item.file.name, p.item.extra_files[0])]
    assert len(members) == len(set(members))
    assert all("cosine distance" in p.reason and "threshold" in p.reason for p in picks)
    assert any(p.is_control and "at random" in p.reason for p in picks)

    # Pushed: both images, p(same) as the pre-annotation's score.
    tasks = push_tasks(chosen)
    payload = ls_payloads.task_payload(tasks[0][1])
    assert payload["data"]["image"].startswith("/data/local-files/?d=items/")
    assert payload["data"]["image2"].startswith("/data/local-files/?d=items/")
    assert payload["data"]["image"] != payload["data"]["image2"]
    prediction = payload["predictions"][0]
    assert prediction["result"][0]["value"]["choices"][0] in ("same", "different")
    assert 0.0 <= prediction["score"] <= 1.0

    # Answers come back: "same" becomes ground truth, two "can't tell" skip the pair.
    for offset, (pick, _) in enumerate(tasks):
        pick.ls_task_id = 900 + offset
        pick.save(update_fields=["ls_task_id"])
    SelectionRound.objects.filter(pk=chosen.pk).update(status=SelectionRound.Status.PUSHED)
    Item.objects.filter(pk__in=[p.item_id for p, _ in tasks]).update(state=ItemState.IN_ANNOTATION)
    first, second = tasks[0][0], tasks[1][0]
    events_apply(payload=_answer(1, first, "same", user=1))
    events_apply(payload=_answer(2, second, "can't tell", user=1))
    truth = GroundTruth.objects.get(item_id=first.item_id)
    assert truth.label_class.name == "same"
    assert not GroundTruth.objects.filter(item_id=second.item_id).exists()
    assert Item.objects.get(pk=second.item_id).state == ItemState.SKIPPED

    # The adaptive machinery serves pairs too: its round records the mix and why.
    project.strategy = "pair_adaptive"
    project.save(update_fields=["strategy"])
    adaptive = selection_round_create(project=project, scoring_run=scoring)
    assert adaptive.strategy == "pair_adaptive"
    assert adaptive.mix["note"].startswith("split pair_mixed")
    arms = set(adaptive.items.values_list("strategy", flat=True))
    assert "pair_mixed" in arms and arms <= {"pair_mixed", "random"}


@pytest.mark.django_db
def test_contradicting_pair_labels_are_listed_by_transitivity(import_root):
    folder = import_root / "chain"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(_png(50 * i + 20, i))
    (folder / "pairs.csv").write_text(
        "left,right,label\n0.png,1.png,same\n1.png,2.png,same\n0.png,2.png,different\n"
        "2.png,3.png,different\n"
    )
    project = _project()
    import_job_run(
        import_job_id=import_job_create(
            project=project, path=str(folder / "pairs.csv"), enqueue=False
        ).pk
    )
    by_name = {i.original_name: i.pk for i in Item.objects.filter(project=project)}
    found = pair_contradictions(project=project)
    assert len(found) == 1
    assert found[0]["different_item"] == by_name["0.png | 2.png"]
    chain = sorted([by_name["0.png | 1.png"], by_name["1.png | 2.png"]])
    assert sorted(found[0]["same_items"]) == chain

    # The review queue lists the three labels of the contradiction, without any model,
    # and sends them back with a reason that says what contradicts what.
    queue = label_review_queue(project=project)
    assert queue["status"] == "ready" and queue["model_version"] is None
    listed = {s["item_id"]: s for s in queue["suspects"]}
    assert sorted(listed) == sorted([by_name["0.png | 2.png"], *chain])
    assert by_name["2.png | 3.png"] not in listed
    different = listed[by_name["0.png | 2.png"]]
    assert different["given"] == "different" and different["evidence"] == "transitivity"
    reason = review_reason(different, version=None, decided=different["decided"])
    assert "chain of 2 'same' labels" in reason and "Keep different" in reason
    shutil.rmtree(folder)

"""Task types are plug-ins: the registries, and a toy task type registered here only that
goes through import, selection, the pushed task, answers, ground truth, training and scoring
without a line of its own anywhere else in Loupe.

The toy, "parity": an annotator counts the bright squares of an image and types the number
(a Number control, not Choices); the class is whether that count is even or odd (the images
of this test are light for odd, dark for even). Its model is a threshold on brightness, not a
network; its ground truth is the latest answer, not the plurality; its strategy reduces a
per-half doubt explicitly to one score per image.
"""

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from loupe.datasets.models import Item, ItemState
from loupe.datasets.services import import_job_create, import_job_run
from loupe.errors import ApplicationError
from loupe.labeling import ls_payloads
from loupe.labeling.events import events_apply
from loupe.labeling.models import Annotation, Decision, GroundTruth
from loupe.labeling.sync import push_tasks
from loupe.learning.models import ModelVersion, Prediction, SelectionRound
from loupe.learning.scoring import scoring_chunk_execute, scoring_run_create
from loupe.learning.selection import selection_round_create
from loupe.learning.training import training_run_create, training_run_execute
from loupe.projects.services import project_create
from loupe.tasktypes import (
    SUPPORTED_TASK_TYPES,
    TASK_TYPES,
    Outcome,
    Vote,
    get_task_type,
    register,
    task_type_of,
    unregister,
)
from loupe.tasktypes.classification import ImageClassification
from ml import strategies, tasks
from ml.strategies import AcquisitionInputs, Strategy, reduce, top_k
from ml.tasks import Evaluation, Predictions, TaskSpec

PARITY = "parity"
COUNT = "count"
THUMBNAIL = "thumbnail"


# --- the toy, learning side (what ml/tasks/parity.py would hold) -----------------------------


class Threshold:
    """The toy model: odd when an image is brighter than `cut`."""

    def __init__(self):
        self.cut = 0.5

    def to(self, device):
        return self

    def eval(self):
        return self


def _brightness(x):
    return x.float().mean(dim=(1, 2, 3)).numpy()


class ParitySpec(TaskSpec):
    name = PARITY
    headline_metric = "accuracy"

    def build_model(self, kind, *, num_classes, image_size, seed=None, **options):
        return Threshold()

    def train(self, model, x, y, *, val_x=None, val_y=None, config=None, progress=None):
        light = _brightness(x)
        model.cut = float((light[y == 0].mean() + light[y == 1].mean()) / 2)
        if progress is not None:
            progress(1, 1, 0.0)
        return SimpleNamespace(
            model=model, device="cpu", seconds=0.0, history=[], class_weights=None
        )

    def predict(self, model, x, *, batch_size=256, mc_samples=0, seed=0):
        light = _brightness(x)
        odd = 1.0 / (1.0 + np.exp(-(light - model.cut) * 20.0))
        halves = np.stack(
            [x[:, :, :, : x.shape[3] // 2].float().mean(dim=(1, 2, 3)).numpy(),
             x[:, :, :, x.shape[3] // 2 :].float().mean(dim=(1, 2, 3)).numpy()],
            axis=1,
        )  # fmt: skip
        return Predictions(
            probs=np.stack([1.0 - odd, odd], axis=1).astype(np.float32),
            embeddings=light[:, None].astype(np.float32),
            extras={"half_doubt": 1.0 - np.abs(halves - model.cut)},
        )

    def evaluate(self, y_true, predictions, *, class_names):
        right = predictions.probs.argmax(axis=1) == np.asarray(y_true)
        value = float(right.mean()) if len(right) else 0.0
        return Evaluation(metric="accuracy", value=value, details={"accuracy": value})

    def to_acquisition_inputs(self, scored, **labeled):
        return AcquisitionInputs(item_scores=scored.extras["half_doubt"], **labeled)

    def weights_bytes(self, model, *, class_names):
        return json.dumps({"cut": model.cut}).encode()

    def load_weights(self, model, content):
        model.cut = json.loads(content)["cut"]
        return model


class MostDoubtfulHalf(Strategy):
    """Items whose more doubtful half is nearest the cut; the reduction is said: max."""

    name = "most_doubtful_half"
    task_types = (PARITY,)

    def _select(self, inputs, batch_size, rng):
        inputs.require("item_scores")
        scores = reduce(inputs.item_scores, axis=1, how="max")
        chosen = top_k(scores, batch_size)
        return chosen, scores[chosen]


# --- the toy, platform side (what loupe/tasktypes/parity.py would hold) ---------------------


class Parity(ImageClassification):
    name = PARITY
    title = "Parity of a count"

    def label_config(self, *, classes, guidelines, image_px):
        return (
            f'<View><Image name="{ls_payloads.IMAGE_FIELD}" value="${ls_payloads.IMAGE_FIELD}"/>'
            f'<Image name="{THUMBNAIL}" value="${THUMBNAIL}" maxWidth="64px"/>'
            f'<Number name="{COUNT}" toName="{ls_payloads.IMAGE_FIELD}" required="true"/></View>'
        )

    def task_data(self, *, file, extra_files=()):
        url = ls_payloads.local_file_url(file)
        return {ls_payloads.IMAGE_FIELD: url, THUMBNAIL: url}

    def pre_annotation(self, *, predicted_class, confidence):
        if predicted_class is None:
            return None
        return ls_payloads.PushPrediction(
            result=_count_result(1 if predicted_class == "odd" else 2),
            score=float(confidence or 0.0),
            model_version=ls_payloads.PREDICTION_MODEL_VERSION,
        )

    def read_answer(self, result):
        counts = [
            r["value"]["number"]
            for r in result
            if r.get("from_name") == COUNT and "number" in r.get("value", {})
        ]
        return ["odd" if counts[-1] % 2 else "even"] if counts else []

    def answer_value(self, result):
        counts = [r["value"]["number"] for r in result if r.get("from_name") == COUNT]
        return {"count": counts[-1]} if counts else None

    def decide(self, votes, *, overlap):
        counted = [v for v in votes if v.counts]
        if not counted:
            return Outcome(state=ItemState.IN_ANNOTATION)
        return Outcome(
            state=ItemState.LABELED,
            label=counted[-1].label,
            decided_by=Decision.SINGLE,
            votes=len(counted),
            agreement=1.0,
            answer=counted[-1].answer,
        )

    def holdout_report(self, *, model, x_train, y_train, x_holdout, y_holdout, names):
        spec = self.ml_spec()
        evaluation = spec.evaluate(y_holdout, spec.predict(model, x_holdout), class_names=names)
        return evaluation.details, {}


def _count_result(number):
    return [
        {
            "from_name": COUNT,
            "to_name": ls_payloads.IMAGE_FIELD,
            "type": "number",
            "value": {"number": number},
        }
    ]


@pytest.fixture
def parity(monkeypatch):
    tasks.register(ParitySpec())
    register(Parity())
    monkeypatch.setitem(
        strategies._FACTORIES, MostDoubtfulHalf.name, lambda **kw: MostDoubtfulHalf()
    )
    yield
    unregister(PARITY)
    tasks.unregister(PARITY)


def _png(value: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(value + rng.integers(-20, 20, size=(16, 16, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _answer(annotation_id, pick, number, *, user, at):
    annotation = {
        "id": annotation_id,
        "task": pick.ls_task_id,
        "result": _count_result(number),
        "was_cancelled": False,
        "ground_truth": False,
        "completed_by": user,
        "lead_time": 2.0,
        "created_at": f"2026-01-05T09:00:{at:02d}Z",
        "updated_at": f"2026-01-05T09:00:{at:02d}Z",
    }
    task = {"id": pick.ls_task_id, "data": {"loupe_item_id": pick.item_id}}
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 7},
        "annotation": annotation,
        "task": task,
    }


@pytest.mark.django_db
def test_a_toy_task_type_runs_the_whole_loop_through_the_seam(
    parity, import_root, settings, label_studio_elsewhere
):
    # Import: 12 light (odd) and 12 dark (even) images, as any project imports them.
    folder = import_root / "counts"
    folder.mkdir()
    for i in range(24):
        (folder / f"{'light' if i % 2 else 'dark'}-{i:02d}.png").write_bytes(
            _png(210 if i % 2 else 40, seed=i)
        )
    project = project_create(
        name="Counts",
        created_by=None,
        task_type=PARITY,
        classes=["even", "odd"],
        image_size=16,
        batch_size=16,
        control_fraction=0.0,
        holdout_fraction=0.25,
        strategy=MostDoubtfulHalf.name,
    )
    project.ls_project_id = 7  # linked to Label Studio (whose webhooks name project 7)
    project.save(update_fields=["ls_project_id"])
    job = import_job_create(project=project, path=str(folder), enqueue=False)
    assert import_job_run(import_job_id=job.pk).imported == 24
    odd = {i.pk for i in Item.objects.filter(project=project, original_name__contains="light")}
    assert len(odd) == 12

    # Select (cold start) and push: the toy's task data and config.
    first = selection_round_create(project=project)
    pairs = push_tasks(first)
    assert len(pairs) == 16
    payload = ls_payloads.task_payload(pairs[0][1])
    assert payload["data"][THUMBNAIL] == payload["data"][ls_payloads.IMAGE_FIELD]
    assert payload["data"][ls_payloads.IMAGE_FIELD].startswith("/data/local-files/?d=items/")
    assert "predictions" not in payload  # no model yet
    assert "<Number" in task_type_of(project).label_config(
        classes=["even", "odd"], guidelines="", image_px=16
    )
    for offset, (pick, _) in enumerate(pairs):
        pick.ls_task_id = 500 + offset
        pick.save(update_fields=["ls_task_id"])
    SelectionRound.objects.filter(pk=first.pk).update(status=SelectionRound.Status.PUSHED)
    Item.objects.filter(pk__in=[p.item_id for p, _ in pairs]).update(state=ItemState.IN_ANNOTATION)

    # Answers: counts, read by the toy; the first item gets a wrong count, then a right one
    # from another annotator: the toy's rule takes the latest (plurality would tie).
    picks = [p for p, _ in pairs]
    contested = picks[0]
    right = {p.pk: (3 if p.item_id in odd else 2) for p in picks}
    wrong = 2 if contested.item_id in odd else 3
    events_apply(payload=_answer(1, contested, wrong, user=1, at=0))
    for n, pick in enumerate(picks, start=2):
        events_apply(payload=_answer(n, pick, right[pick.pk], user=2, at=n))

    # Ground truth: the parity of the latest count.
    truths = {g.item_id: g for g in GroundTruth.objects.filter(project=project)}
    assert len(truths) == 16
    for pick in picks:
        assert truths[pick.item_id].label_class.name == ("odd" if pick.item_id in odd else "even")
    assert truths[contested.item_id].num_annotators == 2
    assert not truths[contested.item_id].needs_review
    # The toy's structured answer (the count) is kept per annotation and in ground truth.
    for pick in picks:
        assert truths[pick.item_id].answer == {"count": right[pick.pk]}
    counts = Annotation.objects.filter(item_id=contested.item_id).order_by("ls_annotation_id")
    assert [a.answer for a in counts] == [{"count": wrong}, {"count": right[contested.pk]}]

    # Train: the threshold, stored and evaluated by the toy.
    run = training_run_execute(
        training_run_id=training_run_create(project=project, enqueue=False).pk
    )
    version = ModelVersion.objects.get(training_run=run)
    assert version.labels_used + run.holdout_size == 16
    assert (
        40 / 255
        < json.loads(Path(settings.MEDIA_ROOT, version.weights.name).read_bytes())["cut"]
        < 210 / 255
    )
    assert run.holdout_size > 0 and version.metrics == {"accuracy": 1.0}

    # Score: the prediction rows people filter on, for the 8 items still in the pool.
    scoring = scoring_run_create(model_version=version, enqueue=False)
    scoring_chunk_execute(chunk_id=scoring.chunks.get(index=0).pk)
    predictions = Prediction.objects.filter(model_version=version).select_related("predicted_class")
    assert predictions.count() == 8
    for prediction in predictions:
        assert prediction.predicted_class.name == ("odd" if prediction.item_id in odd else "even")

    # Select with the toy strategy over the toy's inputs, and push with its pre-annotation.
    scoring.refresh_from_db()
    second = selection_round_create(project=project, scoring_run=scoring)
    assert second.strategy == MostDoubtfulHalf.name and second.items.count() == 8
    pick, task = push_tasks(second)[0]
    expected = 1 if pick.item_id in odd else 2
    assert ls_payloads.task_payload(task)["predictions"][0]["result"] == _count_result(expected)


def test_classification_pairs_and_detection_are_the_registered_task_types_on_both_sides():
    registered = {"image_classification", "pair_verification", "object_detection"}
    assert set(SUPPORTED_TASK_TYPES) == registered <= set(tasks.TASK_TYPES)
    for name in registered:
        kind = get_task_type(name)
        assert TASK_TYPES[name] is kind
        assert kind.ml_spec() is tasks.get_task(name)


def test_an_unknown_task_type_is_refused_naming_the_supported_ones():
    with pytest.raises(ApplicationError, match="not supported yet") as refused:
        get_task_type("video_tracking")
    assert refused.value.extra == {
        "supported": ["image_classification", "object_detection", "pair_verification"]
    }


def test_a_platform_task_type_needs_its_learning_spec_first():
    class Lonely(ImageClassification):
        name = "lonely"

    with pytest.raises(ValueError, match="no learning spec"):
        register(Lonely())
    assert "lonely" not in SUPPORTED_TASK_TYPES


def test_a_registered_task_type_is_supported_until_it_leaves(parity):
    assert PARITY in SUPPORTED_TASK_TYPES
    with pytest.raises(ValueError, match="registered already"):
        register(Parity())
    unregister(PARITY)
    assert PARITY not in SUPPORTED_TASK_TYPES


def test_classification_reads_and_decides_as_before():
    kind = get_task_type("image_classification")
    result = ls_payloads.choices_result(["dent"])
    assert kind.read_answer(result) == ["dent"]
    assert kind.answer_class(result, {"good": 1, "dent": 2}) == 2
    assert kind.answer_class(result, {"good": 1}) is None
    tie = kind.decide([Vote("a", 1), Vote("b", 2)], overlap=1)
    assert tie.needs_review and tie.state == ItemState.IN_ANNOTATION
    majority = kind.decide([Vote("a", 1), Vote("b", 2), Vote("c", 2)], overlap=2)
    assert (majority.label, majority.decided_by) == (2, Decision.MAJORITY)
    assert majority.agreement == pytest.approx(2 / 3)
    pushed = kind.pre_annotation(predicted_class="dent", confidence=0.7)
    assert pushed.result == result and pushed.score == 0.7
    assert kind.pre_annotation(predicted_class=None, confidence=None) is None
    assert kind.task_data(file="items/ab/abc.png") == {
        "image": "/data/local-files/?d=items/ab/abc.png"
    }

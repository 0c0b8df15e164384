"""The object_detection task spec: registry, shapes of what it predicts, evaluation, weights."""

import numpy as np
import pytest
import torch

from ml import artifacts
from ml.detection_training import DetectionTrainConfig
from ml.strategies.base import reduce
from ml.tasks import TASK_TYPES, get_task
from ml.tasks.object_detection import ObjectDetectionSpec, page_boxes
from ml.training import TrainConfig
from tests.ml.detection_pages import CLASSES, draw_pages


@pytest.fixture(scope="module")
def spec_and_model():
    torch.set_num_threads(1)
    spec = get_task("object_detection")
    pages, boxes = draw_pages(8, seed=0)
    model = spec.build_model("centernet", num_classes=3, seed=0)
    result = spec.train(
        model,
        list(pages),
        boxes,
        val_x=pages[:2],
        val_y=boxes[:2],
        config=DetectionTrainConfig(steps=60, batch_size=8, seed=0),
    )
    return spec, result


def test_object_detection_is_registered_with_map50_as_its_headline():
    spec = get_task("object_detection")
    assert isinstance(spec, ObjectDetectionSpec) and TASK_TYPES["object_detection"] is spec
    assert spec.headline_metric == "map50"
    with pytest.raises(ValueError, match="unknown detection model"):
        spec.build_model("small_cnn", num_classes=3)


def test_training_reports_what_the_shared_code_reads(spec_and_model):
    _, result = spec_and_model
    assert result.model is not None and result.seconds > 0 and result.device == "cpu"
    assert result.class_weights.shape == (3,)
    assert "val_map50" in result.history[-1]


def test_predictions_are_padded_per_box_arrays_with_page_embeddings(spec_and_model):
    spec, result = spec_and_model
    pages, _ = draw_pages(3, seed=7)
    predicted = spec.predict(result.model, pages, max_boxes=40, mc_samples=2)
    assert predicted.scores.shape == (3,)
    assert predicted.embeddings.shape == (3, result.model.embedding_dim)
    extras = predicted.extras
    assert extras["boxes"].shape == (3, 40, 4) and extras["labels"].shape == (3, 40)
    assert extras["box_mutual_information"].shape == (3, 40)
    for i in range(3):
        n = min(int(extras["box_count"][i]), 40)
        assert (extras["labels"][i, :n] >= 0).all() and (extras["labels"][i, n:] == -1).all()
        uncertainty = extras["box_uncertainty"][i]
        assert np.isfinite(uncertainty[:n]).all() and np.isnan(uncertainty[n:]).all()
        # The page's figure is a weighted mean of its boxes'.
        assert np.nanmin(uncertainty) - 1e-6 <= predicted.scores[i] <= np.nanmax(uncertainty) + 1e-6
    # The strategies' input: per-box uncertainty reduced per page by an explicit rule.
    inputs = spec.to_acquisition_inputs(predicted.arrays(np.arange(3)))
    np.testing.assert_array_equal(inputs.item_scores, extras["box_uncertainty"])
    assert reduce(inputs.item_scores, how="sum").shape == (3,)
    assert inputs.embeddings.shape[0] == 3


def test_the_artifact_keeps_the_boxes_through_a_file(spec_and_model):
    spec, result = spec_and_model
    pages, _ = draw_pages(2, seed=8)
    predicted = spec.predict(result.model, pages, max_boxes=32)
    stored = artifacts.load(artifacts.save(predicted.arrays(np.array([5, 6]))))
    np.testing.assert_array_equal(stored.scores, predicted.scores)
    np.testing.assert_array_equal(stored.extras["labels"], predicted.extras["labels"])
    np.testing.assert_array_equal(stored.extras["boxes"], predicted.extras["boxes"])


def test_evaluation_gives_map50_per_class_and_confusions(spec_and_model):
    spec, result = spec_and_model
    pages, truth = draw_pages(4, seed=9)
    evaluation = spec.evaluate(truth, spec.predict(result.model, pages), class_names=CLASSES)
    assert evaluation.metric == "map50" and 0.0 <= evaluation.value <= 1.0
    assert [row["class"] for row in evaluation.per_class] == CLASSES
    assert {"map", "ap_small", "confusions", "confusion_matrix"} <= set(evaluation.details)
    perfect = spec.evaluate(
        truth,
        _as_predictions(truth, max_boxes=64),
        class_names=CLASSES,
    )
    assert perfect.value == pytest.approx(1.0)


def _as_predictions(truth, max_boxes):
    from ml.tasks.base import Predictions

    n = len(truth)
    boxes = np.full((n, max_boxes, 4), np.nan, np.float32)
    labels = np.full((n, max_boxes), -1, np.int64)
    scores = np.full((n, max_boxes), np.nan, np.float32)
    for i, t in enumerate(truth):
        m = len(t["labels"])
        boxes[i, :m], labels[i, :m], scores[i, :m] = t["boxes"], t["labels"], 1.0
    return Predictions(extras={"boxes": boxes, "labels": labels, "box_scores": scores})


def test_weights_round_trip_to_the_same_boxes(spec_and_model):
    spec, result = spec_and_model
    content = spec.weights_bytes(result.model, class_names=CLASSES)
    loaded = spec.load_weights(spec.build_model(num_classes=3, seed=1), content)
    pages, _ = draw_pages(2, seed=10)
    a, b = spec.predict(result.model, pages), spec.predict(loaded, pages)
    assert page_boxes(a)[0]["boxes"].shape == page_boxes(b)[0]["boxes"].shape
    np.testing.assert_allclose(a.extras["box_scores"], b.extras["box_scores"], equal_nan=True)


def test_a_classification_train_config_maps_to_the_detector_settings():
    from ml.tasks.object_detection import _detection_config

    mapped = _detection_config(TrainConfig(seed=4, max_steps=30, device="cpu"))
    assert (mapped.steps, mapped.seed, mapped.device) == (30, 4, "cpu")
    assert _detection_config(TrainConfig()).steps == DetectionTrainConfig().steps


def test_a_pages_uncertainty_weighs_its_boxes_by_their_scores():
    from ml.detection import PageDetections
    from ml.tasks.object_detection import page_uncertainty

    def page(scores, uncertainty):
        m = len(scores)
        zeros = np.zeros(m, np.float32)
        return PageDetections(
            boxes=np.zeros((m, 4), np.float32),
            labels=np.zeros(m, np.int64),
            scores=np.asarray(scores, np.float32),
            class_probs=np.zeros((m, 3), np.float32),
            uncertainty=np.asarray(uncertainty, np.float32),
            entropy=zeros,
            mutual_information=zeros,
            embedding=np.zeros(4, np.float32),
        )

    # A sure box (score 0.9) and a faint doubtful one (0.1): mostly the sure box's figure.
    assert page_uncertainty(page([0.9, 0.1], [0.0, 0.6])) == pytest.approx(0.06)
    assert page_uncertainty(page([], [])) == 0.0

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
    assert _detection_config(TrainConfig(min_steps=0)).steps == DetectionTrainConfig().steps
    # From scratch, the platform's planned steps.
    assert _detection_config(TrainConfig(min_steps=70)).steps == 70


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


def _found(labels, scores, class_probs):
    from ml.detection import PageDetections

    m = len(labels)
    zeros = np.zeros(m, np.float32)
    return PageDetections(
        boxes=np.zeros((m, 4), np.float32),
        labels=np.asarray(labels, np.int64),
        scores=np.asarray(scores, np.float32),
        class_probs=np.asarray(class_probs, np.float32),
        uncertainty=zeros,
        entropy=zeros,
        mutual_information=zeros,
        embedding=np.zeros(4, np.float32),
    )


def test_a_pages_classes_are_its_boxes_shares_and_each_box_names_its_runner_up():
    from ml.tasks.object_detection import class_shares, runner_up

    page = _found([0, 0, 2], [0.5, 0.3, 0.2], [[0.6, 0.3, 0.1], [0.5, 0.1, 0.4], [0.2, 0.1, 0.7]])
    np.testing.assert_allclose(class_shares(page, 3), [0.8, 0.0, 0.2])
    np.testing.assert_array_equal(runner_up(page, 3), [1, 2, 0])
    empty = _found([], [], np.zeros((0, 3)))
    np.testing.assert_allclose(class_shares(empty, 3), [1 / 3] * 3)
    assert runner_up(empty, 3).shape == (0,)
    single = _found([0, 0], [0.9, 0.4], [[1.0], [1.0]])
    np.testing.assert_allclose(class_shares(single, 1), [1.0])
    np.testing.assert_array_equal(runner_up(single, 1), [-1, -1])


def test_an_untrained_detector_gives_page_class_shares_and_padded_runner_ups():
    torch.set_num_threads(1)
    spec = get_task("object_detection")
    model = spec.build_model(num_classes=3, seed=0)
    pages, _ = draw_pages(2, size=64, seed=11)
    predicted = spec.predict(model, pages, max_boxes=600, tile_size=64)
    assert predicted.probs.shape == (2, 3)
    np.testing.assert_allclose(predicted.probs.sum(axis=1), 1.0, rtol=1e-5)
    second, labels = predicted.extras["box_second"], predicted.extras["labels"]
    assert second.shape == (2, 600) and second.dtype == np.int64
    for i in range(2):
        n = int(predicted.extras["box_count"][i])
        assert 0 < n < 600
        assert ((second[i, :n] >= 0) & (second[i, :n] < 3)).all()
        assert (second[i, :n] != labels[i, :n]).all() and (second[i, n:] == -1).all()
    # Nothing found: a uniform row and no runner-ups.
    blank = spec.predict(model, pages, max_boxes=8, tile_size=64, score_threshold=1.01)
    np.testing.assert_allclose(blank.probs, np.full((2, 3), 1 / 3), rtol=1e-6)
    assert (blank.extras["box_second"] == -1).all()
    stored = artifacts.load(artifacts.save(predicted.arrays(np.array([1, 2]))))
    np.testing.assert_array_equal(stored.probs, predicted.probs)
    np.testing.assert_array_equal(stored.extras["box_second"], second)

"""The task-type registry and the classification spec, which wraps the classifier code."""

import numpy as np
import pytest
import torch

from ml.artifacts import ItemArrays
from ml.metrics import classification_metrics
from ml.scoring import score
from ml.tasks import (
    TASK_TYPES,
    ClassificationSpec,
    Predictions,
    TaskSpec,
    get_task,
    register,
    unregister,
)
from ml.training import TrainConfig, train_classifier


class _Toy(TaskSpec):
    name = "toy_task"
    headline_metric = "accuracy"


def test_classification_is_registered_under_the_projects_task_type_name():
    spec = get_task("image_classification")
    assert isinstance(spec, ClassificationSpec)
    assert spec.headline_metric == "balanced_accuracy"
    assert TASK_TYPES["image_classification"] is spec


def test_an_unknown_task_type_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown task type 'boxes'.*image_classification"):
        get_task("boxes")


def test_a_task_type_registers_once_and_leaves_again():
    toy = _Toy()
    try:
        assert register(toy) is toy and get_task("toy_task") is toy
        register(toy)  # the same spec again changes nothing
        with pytest.raises(ValueError, match="registered already"):
            register(_Toy())
        with pytest.raises(ValueError, match="registered already"):
            register(type("Other", (ClassificationSpec,), {})())
    finally:
        unregister("toy_task")
    assert "toy_task" not in TASK_TYPES
    nameless = TaskSpec()
    with pytest.raises(ValueError, match="needs a name"):
        register(nameless)


def _data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 16, 16, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0.5).long().numpy()
    return x, y


def test_the_classification_spec_builds_trains_and_predicts_as_the_classifier_code_does():
    spec = get_task("image_classification")
    x, y = _data()
    config = TrainConfig(epochs=2, batch_size=16, num_classes=2, seed=3)
    mine = spec.train(
        spec.build_model("small_cnn", num_classes=2, image_size=16, seed=0), x, y, config=config
    )
    from ml.models import build_model

    theirs = train_classifier(
        build_model("small_cnn", num_classes=2, image_size=16, seed=0), x, y, config=config
    )
    predicted = spec.predict(mine.model, x, mc_samples=3, seed=1)
    expected = score(theirs.model, x, mc_samples=3, seed=1)
    np.testing.assert_allclose(predicted.probs, expected.probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predicted.embeddings, expected.embeddings, rtol=1e-5, atol=1e-6)
    assert predicted.mc_probs.shape == (3, 60, 2)
    np.testing.assert_allclose(predicted.mc_probs, expected.mc_probs, rtol=1e-5, atol=1e-6)


def test_a_model_round_trips_through_the_specs_weights():
    spec = get_task("image_classification")
    model = spec.build_model("small_cnn", num_classes=3, image_size=16, seed=0)
    content = spec.weights_bytes(model, class_names=["a", "b", "c"])
    fresh = spec.load_weights(spec.build_model("small_cnn", num_classes=3, image_size=16), content)
    x, _ = _data(8)
    np.testing.assert_allclose(spec.predict(fresh, x).probs, spec.predict(model, x).probs)


def test_evaluation_headlines_the_balanced_accuracy_with_per_class_detail():
    spec = get_task("image_classification")
    y = np.array([0, 0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1]] * 4 + [[0.8, 0.2], [0.3, 0.7]])
    evaluation = spec.evaluate(y, Predictions(probs=probs), class_names=["good", "dent"])
    assert evaluation.metric == "balanced_accuracy"
    assert evaluation.value == pytest.approx(0.75)  # good 4/4, dent 1/2
    assert [c["class"] for c in evaluation.per_class] == ["good", "dent"]
    assert evaluation.per_class[1]["recall"] == pytest.approx(0.5)
    assert evaluation.details == classification_metrics(y, probs, class_names=["good", "dent"])


def test_scored_items_become_the_strategies_inputs():
    spec = get_task("image_classification")
    rng = np.random.default_rng(0)
    scored = ItemArrays(
        item_ids=np.arange(5),
        probs=rng.dirichlet(np.ones(3), size=5),
        embeddings=rng.normal(size=(5, 4)),
        mc_probs=rng.dirichlet(np.ones(3), size=(2, 5)),
    )
    inputs = spec.to_acquisition_inputs(scored, labeled_class_counts=np.array([1, 0, 2]))
    assert inputs.n == 5 and inputs.num_classes == 3
    np.testing.assert_array_equal(inputs.probs, scored.probs)
    np.testing.assert_array_equal(inputs.mc_probs, scored.mc_probs)
    np.testing.assert_array_equal(inputs.labeled_class_counts, [1, 0, 2])
    # A run scored without embeddings (or with empty ones) gives the strategies none.
    bare = ItemArrays(item_ids=np.arange(5), probs=scored.probs, embeddings=np.empty((5, 0)))
    assert spec.to_acquisition_inputs(bare).embeddings is None


def test_predictions_become_an_artifact_about_their_items():
    probs = np.full((3, 2), 0.5, dtype=np.float32)
    arrays = Predictions(probs=probs, extras={"boxes": np.zeros((3, 2, 4))}).arrays(
        np.array([7, 8, 9]), raw_probs=probs
    )
    assert arrays.item_ids.tolist() == [7, 8, 9]
    assert arrays.raw_probs is probs and arrays.extras["boxes"].shape == (3, 2, 4)

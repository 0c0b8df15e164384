"""What strategies declare (inputs they need, task types they serve), per-item scores in
the acquisition inputs, and the explicit reduction of their extra axes."""

import numpy as np
import pytest

from ml.strategies import (
    ANY_TASK_TYPE,
    DEFAULT_STRATEGY,
    AcquisitionInputs,
    Strategy,
    available,
    default_strategy,
    get_strategy,
    reduce,
    required_inputs,
    select_batch,
)


def test_strategies_declare_the_arrays_they_cannot_work_without():
    assert required_inputs("bald") == ("mc_probs",)
    assert required_inputs("coreset") == ("embeddings",)
    assert required_inputs("badge") == ("embeddings",)
    for name in ("random", "margin", "entropy", "least_confidence", "class_balanced", "hybrid"):
        assert required_inputs(name) == ()
    with pytest.raises(ValueError, match="unknown strategy"):
        required_inputs("oracle")


def test_every_strategy_but_the_pair_and_box_ones_serves_classification_and_random_all():
    pair_strategies = {"pair_uncertainty", "pair_mixed", "pair_adaptive"}
    box_strategies = {"box_sum", "box_mean", "box_max", "box_mean_diverse", "box_adaptive"}
    assert set(available()) - set(available("image_classification")) == (
        pair_strategies | box_strategies
    )
    assert available("pair_verification") == [
        "random",
        "pair_uncertainty",
        "pair_mixed",
        "pair_adaptive",
    ]
    assert default_strategy("pair_verification") == "pair_mixed"
    assert default_strategy("image_classification") == DEFAULT_STRATEGY
    assert available("object_detection") == [
        "random",
        "box_sum",
        "box_mean",
        "box_max",
        "box_mean_diverse",
        "box_adaptive",
    ]
    assert default_strategy("object_detection") == "box_mean"
    assert get_strategy("random").task_types == (ANY_TASK_TYPE,)


def test_a_new_strategy_gets_defaults_without_declaring_anything():
    class Newcomer(Strategy):
        name = "newcomer"

    assert Newcomer().requires == ()
    assert Newcomer().supports("image_classification")
    assert not Newcomer().supports("pair_verification")


def test_inputs_may_carry_per_item_scores_instead_of_probabilities():
    scores = np.arange(12.0).reshape(6, 2)
    inputs = AcquisitionInputs(item_scores=scores)
    assert inputs.n == 6 and inputs.num_classes == 0
    np.testing.assert_array_equal(inputs.take(np.array([5, 0])).item_scores, scores[[5, 0]])
    picked = select_batch("random", inputs, 3, control_fraction=0.0, seed=1)
    assert len(set(picked.indices.tolist())) == 3
    with pytest.raises(ValueError, match="needs probs"):
        get_strategy("margin").select(inputs, 2)
    with pytest.raises(ValueError, match="probs or item_scores"):
        AcquisitionInputs()
    with pytest.raises(ValueError, match="item_scores must have 4 items"):
        AcquisitionInputs(probs=np.full((4, 2), 0.5), item_scores=np.zeros(3))


def test_extra_axes_are_reduced_as_asked():
    # Two items with up to three boxes; NaN pads the second item's missing box.
    per_box = np.array([[0.2, 0.5, 0.3], [0.9, 0.1, np.nan]])
    np.testing.assert_allclose(reduce(per_box, how="sum"), [1.0, 1.0])
    np.testing.assert_allclose(reduce(per_box, how="mean"), [1 / 3, 0.5])
    np.testing.assert_allclose(reduce(per_box, how="max"), [0.5, 0.9])
    np.testing.assert_allclose(reduce(np.full((2, 3), np.nan), how="max"), [0.0, 0.0])
    pairs = np.ones((4, 2, 5))
    assert reduce(pairs, axis=2, how="sum").shape == (4, 2)
    assert reduce(pairs).shape == (4,)
    np.testing.assert_array_equal(reduce(np.array([3.0, 1.0])), [3.0, 1.0])
    with pytest.raises(ValueError, match="first axis"):
        reduce(pairs, axis=0)
    with pytest.raises(ValueError, match="unknown reduction"):
        reduce(pairs, how="median")

"""Page strategies of object detection: the registry serves them to detection projects
only, each box reduction prefers its own kind of page, the diverse one spreads a batch
over the page embeddings, and the adaptive mix moves pages away from an arm whose pages
taught nothing."""

import numpy as np
import pytest

from ml.strategies import (
    AcquisitionInputs,
    PickHistory,
    available,
    default_strategy,
    get_strategy,
    reduce,
    select_batch,
    top_k,
)

BOX_STRATEGIES = ["box_sum", "box_mean", "box_max", "box_mean_diverse"]


def _pages(per_page: list[list[float]], width: int = 16) -> np.ndarray:
    """``item_scores (n, width)``: each page's box uncertainties, NaN past its boxes."""
    scores = np.full((len(per_page), width), np.nan)
    for i, boxes in enumerate(per_page):
        scores[i, : len(boxes)] = boxes
    return scores


def test_detection_projects_get_random_and_the_box_strategies_with_box_mean_by_default():
    assert available("object_detection") == ["random", *BOX_STRATEGIES, "box_adaptive"]
    assert default_strategy("object_detection") == "box_mean"
    for name in ("margin", "entropy", "hybrid", "coreset", "adaptive", "pair_mixed"):
        assert not get_strategy(name).supports("object_detection"), name
    assert not get_strategy("box_adaptive").supports("image_classification")
    for name in BOX_STRATEGIES:
        strategy = get_strategy(name)
        assert strategy.name == name
        assert strategy.requires == ("item_scores",)
        assert not strategy.supports("image_classification"), name


def test_a_box_strategy_asks_for_box_scores_when_given_class_probabilities():
    inputs = AcquisitionInputs(probs=np.full((4, 2), 0.5))
    for name in BOX_STRATEGIES:
        with pytest.raises(ValueError, match="item_scores"):
            get_strategy(name).select(inputs, 2)


def test_each_reduction_puts_its_own_kind_of_page_first():
    scores = _pages(
        [
            [0.3] * 12,  # crowded: many mildly doubtful symbols (sum 3.6, mean 0.3)
            [0.8],  # a lone, very doubtful symbol (mean 0.8)
            [0.95] + [0.05] * 7,  # one puzzling symbol among sure ones (max 0.95)
            [0.1, 0.1],  # a calm page
            [],  # nothing found
        ]
    )
    inputs = AcquisitionInputs(item_scores=scores)
    firsts = {
        name: get_strategy(name).select(inputs, 5).indices.tolist() for name in BOX_STRATEGIES[:3]
    }
    assert firsts["box_sum"][:3] == [0, 2, 1]
    assert firsts["box_mean"][:3] == [1, 0, 2]
    assert firsts["box_max"][:3] == [2, 1, 0]
    # The page without boxes is nobody's priority.
    assert all(order[-1] == 4 for order in firsts.values())
    picked = get_strategy("box_mean").select(inputs, 2)
    np.testing.assert_allclose(picked.scores, [0.8, 0.3])


def _two_clusters(seed: int = 0):
    """40 pages in two far-apart embedding clusters; the six most doubtful pages sit in
    cluster A (0-5), the next six in cluster B (20-25), the rest are calm."""
    rng = np.random.default_rng(seed)
    embeddings = np.concatenate(
        [rng.normal([10.0, 0.0], 0.3, (20, 2)), rng.normal([-10.0, 0.0], 0.3, (20, 2))]
    )
    mean_doubt = np.full(40, 0.1)
    mean_doubt[0:6] = np.linspace(0.9, 0.85, 6)
    mean_doubt[20:26] = np.linspace(0.7, 0.65, 6)
    boxes = [[d] * 3 for d in mean_doubt]
    return AcquisitionInputs(item_scores=_pages(boxes), embeddings=embeddings)


def test_the_diverse_strategy_spreads_a_batch_over_both_clusters_where_top_k_takes_one():
    inputs = _two_clusters()
    plain = get_strategy("box_mean").select(inputs, 4).indices
    assert set(plain.tolist()) <= set(range(6))  # all from cluster A
    for seed in range(5):
        picked = get_strategy("box_mean_diverse").select(inputs, 4, seed=seed)
        chosen = picked.indices.tolist()
        assert len(set(chosen)) == 4
        # From the shortlist of the 12 most doubtful pages, both clusters represented.
        assert set(chosen) <= set(range(6)) | set(range(20, 26)), seed
        assert any(i < 20 for i in chosen) and any(i >= 20 for i in chosen), seed
        assert (np.diff(picked.scores) <= 0).all()  # most doubtful first


def test_the_diverse_strategy_without_embeddings_is_the_plain_top_k():
    inputs = _two_clusters()
    bare = AcquisitionInputs(item_scores=inputs.item_scores)
    np.testing.assert_array_equal(
        get_strategy("box_mean_diverse").select(bare, 4).indices,
        get_strategy("box_mean").select(bare, 4).indices,
    )
    wide = get_strategy("box_mean_diverse", shortlist_factor=1.0).select(inputs, 4).indices
    np.testing.assert_array_equal(wide, get_strategy("box_mean").select(inputs, 4).indices)
    with pytest.raises(ValueError, match="shortlist_factor"):
        get_strategy("box_mean_diverse", shortlist_factor=0.5)


@pytest.mark.parametrize("name", BOX_STRATEGIES)
def test_a_batch_keeps_its_random_control_slice_with_the_box_strategies(name):
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 16, 60)
    scores = _pages([rng.random(c).tolist() for c in counts])
    inputs = AcquisitionInputs(item_scores=scores, embeddings=rng.normal(size=(60, 5)))
    chosen = select_batch(name, inputs, 10, control_fraction=0.2, seed=3)
    again = select_batch(name, inputs, 10, control_fraction=0.2, seed=3)
    np.testing.assert_array_equal(chosen.indices, again.indices)
    assert len(set(chosen.indices.tolist())) == 10
    assert chosen.is_control.sum() == 2 and chosen.strategy == name
    assert set(chosen.arms[~chosen.is_control].tolist()) == {name}
    if name == "box_mean":
        # The strategy's eight are the most doubtful pages outside the control slice.
        rest = np.setdiff1d(np.arange(60), chosen.indices[chosen.is_control])
        expected = rest[top_k(reduce(scores[rest], how="mean"), 8)]
        np.testing.assert_array_equal(chosen.indices[~chosen.is_control], expected)


def _page_history(values_by_arm: dict[str, list[float]], age: int = 0) -> PickHistory:
    """Labeled pages of earlier batches: per arm, each page's value (what it taught);
    the class fields mean nothing for a page of boxes."""
    rows = [
        (arm, 0, 0, 1.0, 0, age, value) for arm, values in values_by_arm.items() for value in values
    ]
    return PickHistory.from_rows(rows)


def test_the_box_mix_moves_pages_away_from_an_arm_whose_pages_taught_nothing():
    from ml.strategies.detection import BOX_PRIOR

    rng = np.random.default_rng(5)
    counts = rng.integers(1, 16, 200)
    scores = _pages([rng.random(c).tolist() for c in counts])
    embeddings = rng.normal(size=(200, 4))
    fresh = AcquisitionInputs(item_scores=scores, embeddings=embeddings)
    # box_mean's pages were all boxed right already; the control slice's and the other
    # arms' pages had boxes the model got wrong.
    taught = _page_history(
        {
            "box_mean": [0.0] * 10,
            "box_mean_diverse": [0.6] * 4,
            "box_sum": [0.5] * 3,
            "random": [0.5] * 3,
            "control": [0.5, 0.4, 0.6, 0.5],
        }
    )
    learned = AcquisitionInputs(item_scores=scores, embeddings=embeddings, history=taught)

    before = select_batch("box_adaptive", fresh, 40, control_fraction=0.1, seed=1)
    after = select_batch("box_adaptive", learned, 40, control_fraction=0.1, seed=1)

    assert before.strategy == after.strategy == "box_adaptive"
    strategy_picks = 40 - 4
    share = (after.arms == "box_mean").sum() / strategy_picks
    assert share < BOX_PRIOR["box_mean"]
    assert (after.arms == "box_mean").sum() < (before.arms == "box_mean").sum()
    assert after.mix["relative_yield"]["box_mean"] < 0.5
    assert set(after.arms.tolist()) == {*BOX_PRIOR, "control"}
    assert len(set(after.indices.tolist())) == 40
    assert "starting mix" in before.note
    for arm in BOX_PRIOR:
        assert arm in after.note
    assert "box_mean 0.3x (from 10 labeled picks)" in after.note

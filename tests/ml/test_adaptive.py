"""The adaptive default: arms re-weighted by what their labeled picks taught, against the
random control slice; and class discovery of regions no label covers."""

import numpy as np
import pytest

from ml.simulation import simulate_arrays
from ml.strategies import (
    DEFAULT_STRATEGY,
    AcquisitionInputs,
    PickHistory,
    arm_shares,
    get_strategy,
    select_batch,
)
from ml.strategies.adaptive import DEFAULT_PRIOR, pick_values

ARMS = {"hybrid": 0.4, "class_balanced": 0.2, "discovery": 0.2, "random": 0.2}


def _history(rows):
    """rows: (arm, label, predicted, confidence, count_before, age)."""
    return PickHistory.from_rows(rows)


def _batch(arm, n, *, wrong, rare=False, age=0):
    """n picks of one arm: wrongly or confidently-rightly predicted, of a rare or common class."""
    count = 2 if rare else 200
    if wrong:
        return [(arm, 1, 0, 0.9, count, age)] * n
    return [(arm, 0, 0, 0.99, count, age)] * n


def test_a_useless_arm_loses_its_share_and_a_useful_one_gains():
    # discovery's picks are items the model already knew; class_balanced's are rare-class
    # mistakes; the control slice is in between.
    rows = (
        _batch("discovery", 10, wrong=False)
        + _batch("class_balanced", 10, wrong=True, rare=True)
        + _batch("hybrid", 20, wrong=True)
        + _batch("control", 8, wrong=False)
        + _batch("control", 2, wrong=True)
    )
    mix = arm_shares(_history(rows), ARMS, floor=0.05)
    assert mix.shares["discovery"] < ARMS["discovery"] / 2
    assert mix.shares["class_balanced"] > ARMS["class_balanced"]
    assert mix.relative_yield["discovery"] < 1.0 < mix.relative_yield["class_balanced"]
    assert sum(mix.shares.values()) == pytest.approx(1.0)
    assert min(mix.shares.values()) >= 0.05 - 1e-12
    assert "discovery" in mix.note and "x (from 10 labeled picks)" in mix.note


def test_when_no_strategy_beats_random_picks_exploration_widens():
    rows = (
        _batch("hybrid", 20, wrong=False)
        + _batch("class_balanced", 10, wrong=False)
        + _batch("discovery", 10, wrong=False)
        + _batch("control", 5, wrong=True)
    )
    mix = arm_shares(_history(rows), ARMS)
    assert mix.shares["random"] > ARMS["random"]
    assert max(mix.shares, key=mix.shares.get) == "random"
    assert "exploration widens" in mix.note


def test_without_labeled_random_picks_the_prior_stands():
    mix = arm_shares(_history(_batch("hybrid", 10, wrong=True)), ARMS, floor=0.0)
    assert mix.shares == pytest.approx(ARMS)
    assert "starting mix" in mix.note
    assert arm_shares(None, ARMS, floor=0.0).shares == pytest.approx(ARMS)


def test_recent_batches_count_more_than_old_ones():
    old_good = _batch("hybrid", 10, wrong=True, age=4) + _batch("hybrid", 10, wrong=False)
    recent_good = _batch("hybrid", 10, wrong=False, age=4) + _batch("hybrid", 10, wrong=True)
    control = _batch("control", 5, wrong=True, age=1) + _batch("control", 15, wrong=False, age=1)
    stale = arm_shares(_history(old_good + control), ARMS).shares["hybrid"]
    fresh = arm_shares(_history(recent_good + control), ARMS).shares["hybrid"]
    assert fresh > stale


def test_a_mistake_on_a_class_with_few_labels_is_worth_most():
    values = pick_values(
        _history(
            [
                ("x", 1, 0, 0.9, 0, 0),
                ("x", 1, 0, 0.9, 99, 0),
                ("x", 0, 0, 0.6, 0, 0),
                ("x", 0, 0, 0.99, 0, 0),
            ]
        )
    )
    assert values[0] > values[1] and values[0] > values[2] > values[3]


def test_pick_history_rejects_ragged_arrays():
    with pytest.raises(ValueError, match="label"):
        PickHistory(
            arm=["a", "b"],
            label=[1],
            predicted=[0, 0],
            confidence=[1, 1],
            count_before=[0, 0],
            age=[0, 0],
        )


def _blobs(rng, sizes, dim=8, spread=0.3):
    centers = rng.normal(size=(len(sizes), dim)) * 5
    x = np.concatenate(
        [c + spread * rng.normal(size=(n, dim)) for c, n in zip(centers, sizes, strict=False)]
    )
    y = np.repeat(np.arange(len(sizes)), sizes)
    return x, y


def test_adaptive_batch_names_each_picks_arm_and_why():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, [300, 40, 20])
    probs = rng.dirichlet(np.ones(3), size=len(y))
    inputs = AcquisitionInputs(
        probs=probs,
        embeddings=x,
        labeled_embeddings=x[:5],
        labeled_class_counts=np.array([5, 0, 0]),
        history=_history(_batch("control", 4, wrong=True) + _batch("hybrid", 10, wrong=False)),
    )
    selection = select_batch("adaptive", inputs, 40, control_fraction=0.1, seed=3)
    assert len(selection) == 40 and len(set(selection.indices.tolist())) == 40
    assert (selection.arms[selection.is_control] == "control").all()
    counts = {a: int((selection.arms == a).sum()) for a in set(selection.arms)}
    assert counts["control"] == 4
    assert set(counts) <= {"control", *DEFAULT_PRIOR}
    assert counts.get("hybrid", 0) < round(36 * DEFAULT_PRIOR["hybrid"])  # it taught nothing
    assert "split" in selection.note
    again = select_batch("adaptive", inputs, 40, control_fraction=0.1, seed=3)
    assert np.array_equal(selection.indices, again.indices)


def test_adaptive_without_embeddings_gives_discoverys_share_to_the_others():
    probs = np.random.default_rng(1).dirichlet(np.ones(3), size=200)
    selection = get_strategy("adaptive").select(AcquisitionInputs(probs=probs), 30, seed=0)
    assert len(selection) == 30
    assert "discovery" not in set(selection.arms)


def test_discovery_finds_a_cluster_no_label_covers():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, [500, 500, 30])  # class 2: small, and unlabeled
    labeled = np.concatenate([np.flatnonzero(y == 0)[:10], np.flatnonzero(y == 1)[:10]])
    pool = np.setdiff1d(np.arange(len(y)), labeled)
    inputs = AcquisitionInputs(
        probs=np.full((len(pool), 2), 0.5), embeddings=x[pool], labeled_embeddings=x[labeled]
    )
    picked = get_strategy("discovery").select(inputs, 5, seed=0)
    found = y[pool[picked.indices]]
    assert (found == 2).sum() >= 1
    random_rate = (y[pool] == 2).mean()
    assert (found == 2).mean() > 5 * random_rate


def test_discovery_needs_embeddings():
    with pytest.raises(ValueError, match="embeddings"):
        get_strategy("discovery").select(AcquisitionInputs(probs=np.ones((5, 2)) / 2), 2)


def test_simulation_records_the_mix_and_the_classes_picked_per_batch():
    rng = np.random.default_rng(4)
    x, y = _blobs(rng, [150, 150, 12], dim=16, spread=1.0)
    result = simulate_arrays(
        x,
        y,
        strategies=["adaptive"],
        seeds=1,
        rounds=2,
        batch=10,
        initial=10,
        control_fraction=0.2,
        initial_without=[2],
    )
    run = result["curves"]["adaptive"]["per_seed"][0]
    assert run["class_counts"][0][2] == 0  # the class kept out of the initial set
    assert len(run["arms"]) == len(run["picked_classes"]) == len(run["notes"]) == 2
    assert all(sum(a.values()) == 10 and a["control"] == 2 for a in run["arms"])
    assert all(sum(p) == 10 for p in run["picked_classes"])
    assert len(run["recall"][0]) == 3
    assert "worth per pick" in run["notes"][1]  # the second batch knows the first's labels


def test_adaptive_is_the_default():
    assert DEFAULT_STRATEGY == "adaptive"


def test_the_pair_mix_drops_a_useless_pair_arm_for_random_pairs_and_keeps_a_useful_one():
    # Classes of a pair: 0 different, 1 same. A pair arm whose picks were all confident
    # "different" the model got right taught nothing; random pairs found missed "same" ones.
    useless = [("pair_mixed", 0, 0, 0.99, 200, 0)] * 20 + [("control", 1, 0, 0.8, 5, 0)] * 4
    useful = [("pair_mixed", 1, 0, 0.6, 5, 0)] * 20 + [("control", 0, 0, 0.99, 200, 0)] * 4
    strategy = get_strategy("pair_adaptive")
    assert strategy.supports("pair_verification") and not strategy.supports("image_classification")
    rng = np.random.default_rng(0)
    p = rng.random(60)
    members = rng.normal(size=(60, 8))
    for history, expect_low in ((useless, True), (useful, False)):
        inputs = AcquisitionInputs(
            probs=np.stack([1 - p, p], 1),
            embeddings=np.concatenate([members, members[::-1]], 1),
            history=PickHistory.from_rows(history),
        )
        selection = strategy.select(inputs, 20, seed=1)
        share = float((selection.arms == "pair_mixed").mean())
        assert (share < 0.3) if expect_low else (share > 0.8), (share, selection.note)
        assert "pair_mixed" in selection.note and "against random picks" in selection.note


def test_while_a_class_has_no_label_random_picks_take_half_the_batch():
    from ml.strategies.adaptive import UNSEEN_CLASS_RANDOM_SHARE

    probs = np.random.default_rng(2).dirichlet(np.ones(3), size=300)
    strategy = get_strategy("adaptive")
    seen = strategy.select(
        AcquisitionInputs(probs=probs, labeled_class_counts=np.array([9, 4, 2])), 40
    )
    unseen = strategy.select(
        AcquisitionInputs(probs=probs, labeled_class_counts=np.array([9, 4, 0])), 40
    )
    random_seen = int((seen.arms == "random").sum())
    random_unseen = int((unseen.arms == "random").sum())
    assert random_seen < 0.3 * 40
    assert random_unseen == round(UNSEEN_CLASS_RANDOM_SHARE * 40)
    # The other arms keep their order of shares, scaled down.
    assert int((unseen.arms == "hybrid").sum()) > int((unseen.arms == "class_balanced").sum())
    assert "class #3 (in the project's order) has no label yet" in unseen.note
    assert "no label yet" not in seen.note


def test_random_picks_wait_less_and_less_for_a_class_they_never_found():
    from ml.strategies.adaptive import UNSEEN_CLASS_RANDOM_PICKS, UNSEEN_CLASS_RANDOM_SHARE

    probs = np.random.default_rng(2).dirichlet(np.ones(3), size=300)
    strategy = get_strategy("adaptive")

    def random_picks(looked):
        inputs = AcquisitionInputs(
            probs=probs, labeled_class_counts=np.array([9, 4, 0]), random_labeled=looked
        )
        selection = strategy.select(inputs, 40)
        return int((selection.arms == "random").sum()), selection.note

    full = round(UNSEEN_CLASS_RANDOM_SHARE * 40)
    assert random_picks(UNSEEN_CLASS_RANDOM_PICKS)[0] == full
    half, note = random_picks(2 * UNSEEN_CLASS_RANDOM_PICKS)
    assert half == full // 2
    assert (
        f"class #3 (in the project's order) still has no label after"
        f" {2 * UNSEEN_CLASS_RANDOM_PICKS} random picks" in note
    )
    assert "random picks take 25% of the batch, less the longer they miss it" in note
    # Long past it, the share is the mix's own again.
    seen = strategy.select(AcquisitionInputs(probs=probs, labeled_class_counts=[9, 4, 2]), 40)
    assert random_picks(40 * UNSEEN_CLASS_RANDOM_PICKS)[0] == int((seen.arms == "random").sum())


def test_a_task_types_own_pick_values_replace_surprise_times_rarity():
    # Pages of boxes: the same class fields for every pick, the value tells them apart.
    rows = [("box_mean", 0, 0, 0.5, 10, 0, 0.9)] * 10 + [("control", 0, 0, 0.5, 10, 0, 0.2)] * 10
    history = _history(rows)
    assert pick_values(history).tolist() == [0.9] * 10 + [0.2] * 10
    mix = arm_shares(history, {"box_mean": 0.5, "random": 0.5})
    assert mix.relative_yield["box_mean"] > 2.0
    assert mix.shares["box_mean"] > 0.5


def test_pick_history_rows_must_all_have_the_same_fields():
    with pytest.raises(ValueError, match="6 fields, or 7"):
        _history([("control", 0, 0, 0.5, 10)])
    with pytest.raises(ValueError):
        _history([("control", 0, 0, 0.5, 10, 0), ("control", 0, 0, 0.5, 10, 0, 0.3)])


def test_an_adaptive_mix_refuses_an_arm_it_cannot_build():
    from ml.strategies.adaptive import AdaptiveStrategy

    with pytest.raises(ValueError, match="unknown arm box_mean"):
        AdaptiveStrategy(prior={"box_mean": 1.0})

"""Acquisition strategies on constructed inputs where the right answer is known."""

import numpy as np
import pytest

from ml.strategies import (
    DEFAULT_STRATEGY,
    AcquisitionInputs,
    available,
    class_quotas,
    cold_start,
    get_strategy,
    select_batch,
)


def _confident(n, k, cls, p=0.97):
    probs = np.full((n, k), (1 - p) / (k - 1))
    probs[:, cls] = p
    return probs


def _random_inputs(n=300, k=4, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return AcquisitionInputs(
        probs=rng.dirichlet(np.ones(k), size=n),
        embeddings=rng.normal(size=(n, d)),
        mc_probs=rng.dirichlet(np.ones(k), size=(5, n)),
        labeled_embeddings=rng.normal(size=(10, d)),
        labeled_class_counts=np.array([6, 2, 2, 0]),
    )


def test_every_advertised_strategy_selects_distinct_valid_items_deterministically():
    inputs = _random_inputs()
    assert {"random", "least_confidence", "margin", "entropy", "bald", "coreset", "badge",
            "class_balanced", "hybrid"} <= set(available())  # fmt: skip
    assert DEFAULT_STRATEGY in available()
    for name in available("image_classification"):
        first = get_strategy(name).select(inputs, 25, seed=3)
        again = get_strategy(name).select(inputs, 25, seed=3)
        assert len(first) == 25, name
        assert len(set(first.indices.tolist())) == 25, name
        assert first.indices.min() >= 0 and first.indices.max() < inputs.n, name
        np.testing.assert_array_equal(first.indices, again.indices, err_msg=name)
        assert first.strategy == name


def test_asking_for_more_than_the_pool_returns_the_whole_pool():
    inputs = _random_inputs(n=7)
    for name in available("image_classification"):
        chosen = get_strategy(name).select(inputs, 50, seed=0).indices
        assert sorted(chosen.tolist()) == list(range(7)), name


def test_uncertainty_measures_pick_the_items_built_to_be_uncertain():
    probs = _confident(10, 3, 0)
    probs[4] = [0.34, 0.33, 0.33]  # uncertain under every measure
    probs[7] = [0.5, 0.5, 0.0]  # a tie between two classes: the margin's favourite
    for measure in ("least_confidence", "entropy"):
        picked = get_strategy(measure).select(AcquisitionInputs(probs), 1, seed=0)
        assert picked.indices.tolist() == [4], measure
    margin = get_strategy("margin").select(AcquisitionInputs(probs), 2, seed=0)
    assert margin.indices.tolist() == [7, 4]
    assert margin.scores[0] >= margin.scores[1]


def test_bald_prefers_disagreeing_dropout_samples_over_consistent_doubt():
    n, k = 6, 2
    mc = np.tile(_confident(n, k, 0, p=0.9), (4, 1, 1))
    mc[:, 2] = [0.5, 0.5]  # every pass unsure: aleatoric, BALD should not care
    mc[0::2, 5] = [0.99, 0.01]  # passes confident but contradicting each other
    mc[1::2, 5] = [0.01, 0.99]
    inputs = AcquisitionInputs(probs=mc.mean(axis=0), mc_probs=mc)
    assert get_strategy("bald").select(inputs, 1, seed=0).indices.tolist() == [5]
    with pytest.raises(ValueError, match="mc_probs"):
        get_strategy("bald").select(AcquisitionInputs(probs=mc.mean(axis=0)), 1, seed=0)


def test_coreset_covers_clusters_far_from_the_labeled_set():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    emb = np.concatenate([c + rng.normal(scale=0.1, size=(25, 2)) for c in centers])
    inputs = AcquisitionInputs(
        probs=np.full((100, 2), 0.5), embeddings=emb, labeled_embeddings=centers[:1]
    )
    chosen = get_strategy("coreset").select(inputs, 3, seed=0).indices
    # The labeled item sits in cluster 0: one pick in each of the three other clusters.
    assert sorted((chosen // 25).tolist()) == [1, 2, 3]
    with pytest.raises(ValueError, match="embeddings"):
        get_strategy("coreset").select(AcquisitionInputs(np.full((5, 2), 0.5)), 1, seed=0)


def test_badge_starts_with_the_largest_gradient_and_avoids_duplicates():
    probs = _confident(40, 3, 0, p=0.98)
    probs[[5, 6]] = [0.4, 0.3, 0.3]  # two uncertain twins ...
    emb = np.random.default_rng(1).normal(size=(40, 4))
    emb[6] = emb[5]  # ... with identical features
    emb[5] *= 3
    emb[6] = emb[5]
    chosen = (
        get_strategy("badge").select(AcquisitionInputs(probs, embeddings=emb), 5, seed=0).indices
    )
    assert chosen[0] in (5, 6)
    assert not {5, 6} <= set(chosen.tolist())  # a twin adds nothing: never both


def test_class_quotas_go_to_classes_below_target_or_balance():
    assert class_quotas(20, [50, 3, 10, 0, 20]).tolist() == [0, 6, 5, 6, 3]
    # Targets: only classes short of their target get slots, in proportion to the gap.
    assert class_quotas(20, [50, 3, 10, 0, 20], [50, 50, 10, 5, 20]).tolist() == [0, 18, 0, 2, 0]
    # A budget larger than all gaps closes them, then keeps the counts even.
    assert class_quotas(100, [5, 5, 0]).tolist() == [32, 32, 36]
    assert class_quotas(7, [5, 5, 5]).sum() == 7


def test_class_balanced_spends_the_batch_on_the_under_represented_class():
    k = 3
    probs = np.concatenate([_confident(50, k, 0), _confident(5, k, 1), _confident(50, k, 2)])
    probs[:50, 1] += 0.02  # common-class items, slightly more like the rare class than others
    probs /= probs.sum(axis=1, keepdims=True)
    counts = np.array([40, 1, 40])
    inputs = AcquisitionInputs(probs, labeled_class_counts=counts)
    chosen = get_strategy("class_balanced").select(inputs, 8, seed=0).indices
    predicted_rare = set(range(50, 55))
    assert predicted_rare <= set(chosen.tolist())  # every item the model calls rare
    # With targets the quota follows the targets instead: class 2 is the one short now.
    targeted = AcquisitionInputs(probs, labeled_class_counts=counts, class_targets=[40, 1, 48])
    chosen = get_strategy("class_balanced").select(targeted, 8, seed=0).indices
    assert all(55 <= i < 105 for i in chosen)


def test_class_balanced_discovers_a_class_the_model_never_predicts():
    probs = _confident(60, 3, 0, p=0.9)
    probs[10] = [0.6, 0.1, 0.3]  # the most class-2-like item, though predicted 0
    counts = np.array([30, 30, 0])
    chosen = get_strategy("class_balanced").select(
        AcquisitionInputs(probs, labeled_class_counts=counts), 1, seed=0
    )
    assert chosen.indices.tolist() == [10]


def test_hybrid_keeps_uncertain_items_but_drops_near_duplicates():
    probs = _confident(100, 2, 0, p=0.99)
    probs[:10] = [0.5, 0.5]  # ten equally uncertain items: five copies each of two parts
    probs[10:20] = [0.6, 0.4]  # a bit less uncertain, all different
    emb = np.random.default_rng(0).normal(size=(100, 3)) * 5
    emb[0:5] = emb[0]
    emb[5:10] = emb[5]
    inputs = AcquisitionInputs(probs, embeddings=emb)
    chosen = get_strategy("hybrid", shortlist_factor=4).select(inputs, 5, seed=0).indices
    assert set(chosen.tolist()) <= set(range(20))  # stays in the uncertain shortlist
    assert len({int(emb[i, 0] * 1000) for i in chosen}) == 5  # no two copies of a part
    plain = get_strategy("margin").select(inputs, 5, seed=0).indices
    assert len({int(emb[i, 0] * 1000) for i in plain}) < 5


def test_random_depends_on_the_seed_only():
    inputs = _random_inputs()
    a = get_strategy("random").select(inputs, 10, seed=1).indices
    b = get_strategy("random").select(inputs, 10, seed=2).indices
    assert a.tolist() != b.tolist()


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown strategy 'oracle'"):
        get_strategy("oracle")


def test_select_batch_reserves_a_random_control_slice():
    inputs = _random_inputs(n=500)
    sel = select_batch("margin", inputs, 40, control_fraction=0.1, seed=5)
    assert len(sel) == 40 and len(set(sel.indices.tolist())) == 40
    assert sel.is_control.sum() == 4
    assert not sel.is_control[:36].any()  # strategy picks first, in priority order
    # The control slice is drawn before the strategy runs and does not depend on it.
    other = select_batch("entropy", inputs, 40, control_fraction=0.1, seed=5)
    np.testing.assert_array_equal(sel.indices[sel.is_control], other.indices[other.is_control])
    # Controls are not the uncertain items: on average they are as uncertain as the pool.
    margins = []
    for seed in range(30):
        s = select_batch("margin", inputs, 40, control_fraction=0.5, seed=seed)
        margins.append(inputs.probs[s.indices[s.is_control]].max(axis=1).mean())
    assert abs(np.mean(margins) - inputs.probs.max(axis=1).mean()) < 0.03
    none = select_batch("margin", inputs, 40, control_fraction=0.0, seed=5)
    assert not none.is_control.any()
    with pytest.raises(ValueError):
        select_batch("margin", inputs, 40, control_fraction=1.5, seed=5)


def test_cold_start_stratified_represents_every_stratum():
    strata = np.array(["line-a"] * 900 + ["line-b"] * 95 + ["night-shift"] * 5)
    chosen = cold_start(1000, 20, strata=strata, seed=0)
    assert len(set(chosen.tolist())) == 20
    seen = set(strata[chosen].tolist())
    assert seen == {"line-a", "line-b", "night-shift"}
    assert (strata[chosen] == "line-a").sum() >= 14  # otherwise proportional
    np.testing.assert_array_equal(chosen, cold_start(1000, 20, strata=strata, seed=0))
    assert len(cold_start(1000, 20, seed=0)) == 20  # plain random without metadata


def test_cold_start_on_embeddings_covers_the_dense_clusters_not_outliers():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [20, 0], [0, 20]], dtype=float)
    emb = np.concatenate([c + rng.normal(size=(100, 2)) for c in centers])
    emb = np.concatenate([emb, [[60.0, 60.0]]])  # one lone outlier
    for method in ("kmeans", "typicality"):
        chosen = cold_start(len(emb), 3, embeddings=emb, method=method, seed=0)
        assert len(set(chosen.tolist())) == 3, method
        if method == "typicality":
            assert 300 not in chosen
            assert sorted((chosen // 100).tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="embeddings"):
        cold_start(10, 3, method="kmeans", seed=0)
    with pytest.raises(ValueError, match="unknown cold-start"):
        cold_start(10, 3, method="psychic", seed=0)

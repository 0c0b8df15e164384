import numpy as np
import pytest

from ml.strategies import AcquisitionInputs, default_strategy, select_batch
from ml.strategies.pairs import (
    ACROSS_CLUSTERS,
    NEIGHBOUR,
    PairUncertaintyStrategy,
    canonical,
    known_pairs,
    mine_candidate_pairs,
    random_pairs,
    select_diverse,
    select_pairs,
)


def identities(n_people=6, per=5, d=8, spread=0.15, seed=0):
    """Embeddings of ``n_people`` tight clusters, and who each image shows."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, d))
    who = np.repeat(np.arange(n_people), per)
    e = centres[who] + spread * rng.normal(size=(len(who), d))
    return e / np.linalg.norm(e, axis=1, keepdims=True), who


def test_random_pairs_are_distinct_new_and_deterministic():
    labeled = np.array([[0, 1], [2, 3]])
    pairs = random_pairs(10, 40, seed=1, exclude=labeled)
    keys = {tuple(p) for p in canonical(pairs).tolist()}
    assert len(pairs) == len(keys) == 40
    assert all(a != b for a, b in keys)
    assert not keys & {(0, 1), (2, 3)}
    np.testing.assert_array_equal(pairs, random_pairs(10, 40, seed=1, exclude=labeled))
    assert len(random_pairs(4, 100, seed=0)) == 6  # every pair of four images


def test_mined_candidates_find_same_pairs_random_pairs_miss():
    e, who = identities()
    pairs, distance, reasons = mine_candidate_pairs(e, neighbours=3, across=1, seed=0)
    neighbour = reasons == NEIGHBOUR
    assert set(reasons) == {NEIGHBOUR, ACROSS_CLUSTERS}
    assert (who[pairs[neighbour, 0]] == who[pairs[neighbour, 1]]).mean() > 0.9
    shuffled = random_pairs(len(e), 100, seed=0)
    assert (who[shuffled[:, 0]] == who[shuffled[:, 1]]).mean() < 0.35
    assert np.all(np.diff(canonical(pairs), axis=1) > 0)
    assert len({tuple(p) for p in pairs.tolist()}) == len(pairs)
    np.testing.assert_allclose(distance, 1 - (e[pairs[:, 0]] * e[pairs[:, 1]]).sum(1), atol=1e-9)


def test_known_pairs_hold_every_answer_the_labels_imply():
    labeled = np.array([[0, 1], [2, 1], [3, 4], [0, 3]])
    same = np.array([True, True, True, False])  # {0, 1, 2} same, {3, 4} same, apart
    known = {tuple(p) for p in known_pairs(labeled, same).tolist()}
    assert {(0, 2), (1, 2)} <= known  # same by transitivity
    assert {(0, 4), (1, 3), (2, 4)} <= known  # different: one identity parted from another
    assert (4, 5) not in known and (0, 5) not in known  # image 5 is in no label
    assert len(known_pairs(np.empty((0, 2)), np.empty(0, bool))) == 0


def test_no_label_is_spent_on_a_pair_the_labels_imply():
    e, who = identities(n_people=8, per=4, spread=0.05)
    calibration = (8.0, -10.0)
    # Two labels join three images of person 0 into a chain: the third pair of theirs is
    # known to be "same" already. Asking for every unlabeled "same" pair there is
    # (8 people x 6 pairs, less the two labeled) asks for it too, unless told the answers.
    members = np.flatnonzero(who == 0)[:3]
    labeled = np.array([[members[0], members[1]], [members[1], members[2]]])
    same = np.array([True, True])
    implied = (int(members[0]), int(members[2]))
    options = dict(calibration=calibration, strategy="likely_same", exclude=labeled)
    asked = select_pairs(e, 46, max_per_image=3, seed=0, **options)
    told = select_pairs(e, 46, max_per_image=3, seed=0, labels=same, **options)
    assert implied in {tuple(p) for p in asked.pairs.tolist()}
    assert implied not in {tuple(p) for p in told.pairs.tolist()}
    assert len(told) == 46
    assert (who[told.pairs[:, 0]] == who[told.pairs[:, 1]]).sum() == 45  # all the others


def test_uncertain_selection_prefers_pairs_near_the_threshold_without_repeating_images():
    e, _ = identities(n_people=8, per=6)
    calibration = (5.0, -10.0)  # p(same) = 0.5 at distance 0.5
    picked = select_pairs(e, 12, calibration=calibration, strategy="uncertain", seed=0)
    assert len(picked) == 12 and picked.threshold == pytest.approx(0.5)
    images = picked.pairs.ravel()
    assert len(np.unique(images)) == len(images)  # no image twice in one batch
    candidates, d, _ = mine_candidate_pairs(e, seed=0)
    assert np.median(np.abs(picked.distances - 0.5)) < np.median(np.abs(d - 0.5))
    again = select_pairs(e, 12, calibration=calibration, strategy="uncertain", seed=0)
    np.testing.assert_array_equal(picked.pairs, again.pairs)
    labeled = select_pairs(e, 5, calibration=calibration, exclude=picked.pairs, seed=0)
    assert not {tuple(p) for p in labeled.pairs.tolist()} & {
        tuple(p) for p in picked.pairs.tolist()
    }


def test_the_mixed_default_asks_for_likely_same_pairs_as_well_as_uncertain_ones():
    e, who = identities(n_people=10, per=6, spread=0.3)
    calibration = (8.0, -10.0)  # a threshold (0.8) where different pairs sit
    uncertain = select_pairs(e, 10, calibration=calibration, strategy="uncertain", seed=0)
    mixed = select_pairs(e, 10, calibration=calibration, seed=0)

    def same_share(selection):
        return float((who[selection.pairs[:, 0]] == who[selection.pairs[:, 1]]).mean())

    assert same_share(mixed) > same_share(uncertain)
    assert sum(r.endswith("likely same") for r in mixed.reasons) == 5
    assert sum(r.endswith("near the threshold") for r in mixed.reasons) == 5
    images = mixed.pairs.ravel()
    assert len(np.unique(images)) == len(images)  # one cap over both halves
    with pytest.raises(ValueError, match="unknown pair strategy"):
        select_pairs(e, 3, calibration=calibration, strategy="oracle")


def test_one_odd_image_does_not_fill_the_batch():
    # Image 0 sits in every one of the most uncertain pairs.
    pairs = np.array([[0, i] for i in range(1, 9)] + [[i, i + 1] for i in range(10, 20, 2)])
    scores = np.r_[np.full(8, 0.99), np.linspace(0.5, 0.4, 5)]
    chosen = select_diverse(pairs, scores, 5, max_per_image=1, seed=0)
    assert sum(0 in pairs[i] for i in chosen) == 1
    # Without other images left, the cap gives way rather than returning a short batch.
    assert len(select_diverse(pairs[:8], scores[:8], 4, max_per_image=1)) == 4


def test_the_pair_strategy_serves_pair_items_through_select_batch():
    rng = np.random.default_rng(0)
    members = rng.normal(size=(6, 4))
    # Ten pool pairs; image 0 is in the four most uncertain ones.
    index = np.array(
        [[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [3, 4], [5, 1], [5, 2], [2, 4], [3, 5]]
    )
    p = np.array([0.5, 0.5, 0.51, 0.49, 0.6, 0.65, 0.9, 0.95, 0.05, 0.99])
    inputs = AcquisitionInputs(
        probs=np.stack([1 - p, p], 1),
        embeddings=np.concatenate([members[index[:, 0]], members[index[:, 1]]], 1),
    )
    selection = select_batch(PairUncertaintyStrategy(), inputs, 3, control_fraction=0.0, seed=0)
    assert sum(0 in index[i] for i in selection.indices) == 1
    # Then the most uncertain pairs of unused images: (3, 4) and (5, 2).
    assert selection.indices[0] in (0, 1) and selection.indices[1:].tolist() == [5, 7]
    assert PairUncertaintyStrategy().supports("pair_verification")
    assert not PairUncertaintyStrategy().supports("image_classification")


def test_the_mixed_pair_strategy_asks_for_likely_same_pairs_as_well_as_unsure_ones():
    rng = np.random.default_rng(1)
    members = rng.normal(size=(8, 4))
    index = np.array([[0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7]])
    # Pairs 0-3 are near the threshold; 4 and 6 are likely the same; 5 and 7 surely not.
    p = np.array([0.5, 0.48, 0.52, 0.45, 0.97, 0.02, 0.93, 0.01])
    inputs = AcquisitionInputs(
        probs=np.stack([1 - p, p], 1),
        embeddings=np.concatenate([members[index[:, 0]], members[index[:, 1]]], 1),
    )
    uncertain = select_batch("pair_uncertainty", inputs, 2, control_fraction=0.0, seed=0)
    mixed = select_batch("pair_mixed", inputs, 2, control_fraction=0.0, seed=0)
    # Uncertainty alone never asks about a likely "same" pair; the mix gives it half.
    assert set(uncertain.indices.tolist()) <= {0, 1, 2, 3}
    assert mixed.indices[0] == 4 and mixed.indices[1] in (1, 2, 3)  # no image of pair 4 twice
    np.testing.assert_allclose(mixed.scores[0], 0.97)
    assert default_strategy("pair_verification") == "pair_mixed"

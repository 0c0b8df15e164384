"""Shift detection: no shift gives a high p-value, a shifted set is detected."""

import numpy as np
import pytest

from ml.drift import domain_classifier_test, mmd_test, roc_auc


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    same = rng.normal(size=(300, 16))
    shifted = rng.normal(size=(300, 16))
    shifted[:, :3] += 0.6  # e.g. a new camera: a few features move
    return a, same, shifted


def test_auc_matches_the_rank_definition():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_domain_classifier_sees_no_shift_between_samples_of_one_distribution(sets):
    a, same, _ = sets
    result = domain_classifier_test(a, same, seed=0, n_permutations=40)
    assert result["p_value"] > 0.1 and not result["shifted"]
    assert result["ci_low"] <= 0.5 + 0.05 and result["auc"] < 0.6
    assert result["n_a"] == result["n_b"] == 300


def test_domain_classifier_detects_a_shift(sets):
    a, _, shifted = sets
    result = domain_classifier_test(a, shifted, seed=0, n_permutations=40)
    assert result["shifted"] and result["p_value"] < 0.05
    assert 0.5 < result["ci_low"] < result["auc"] < result["ci_high"] <= 1.0


def test_mmd_agrees(sets):
    a, same, shifted = sets
    assert mmd_test(a, same, n_permutations=100, seed=0)["p_value"] > 0.1
    detected = mmd_test(a, shifted, n_permutations=100, seed=0)
    assert detected["p_value"] < 0.05 and detected["mmd"] > 0


def test_tests_are_deterministic_and_check_shapes(sets):
    a, same, _ = sets
    assert mmd_test(a, same, n_permutations=20, seed=3) == mmd_test(
        a, same, n_permutations=20, seed=3
    )
    with pytest.raises(ValueError, match="sizes differ"):
        mmd_test(a, same[:, :5])

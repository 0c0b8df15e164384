import numpy as np
import pytest

from ml.pair_metrics import equal_error_rate, pair_metrics, roc_auc, tar_at_far


def test_perfect_separation():
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.05])
    m = pair_metrics(y, s, threshold=0.5, n_resamples=50)
    assert m["roc_auc"] == 1.0
    assert m["eer"] == 0.0
    assert 0.3 < m["eer_threshold"] <= 0.7
    assert m["tar_at_far_1pct"] == m["tar_at_far_0_1pct"] == 1.0
    assert m["accuracy"] == 1.0 and m["far"] == 0.0 and m["tar"] == 1.0
    assert m["n_same"] == 3 and m["n_different"] == 4
    assert m["intervals"]["roc_auc"] == [1.0, 1.0]


def test_reversed_scores_and_ties():
    y = np.array([1, 1, 0, 0])
    assert roc_auc(y, -np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(y, np.ones(4)) == 0.5
    assert roc_auc(np.ones(3), np.arange(3)) is None


def test_random_scores_sit_near_chance():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    s = rng.random(4000)
    assert roc_auc(y, s) == pytest.approx(0.5, abs=0.03)
    eer, _ = equal_error_rate(y, s)
    assert eer == pytest.approx(0.5, abs=0.03)
    tar, _ = tar_at_far(y, s, 0.01)
    assert tar < 0.05


def test_tar_at_far_on_a_known_case():
    # 10 different pairs: one scores above every same pair, the rest below.
    y = np.array([1] * 4 + [0] * 10)
    s = np.array([0.9, 0.8, 0.6, 0.4] + [0.95] + [0.1] * 9)
    tar, threshold = tar_at_far(y, s, 0.01)
    assert tar == 0.0 and threshold > 0.95  # accepting anything admits the impostor
    tar, threshold = tar_at_far(y, s, 0.1)
    assert tar == 1.0 and threshold == pytest.approx(0.4)
    m = pair_metrics(y, s, n_resamples=0)
    assert m["far_resolution"] == pytest.approx(0.1)
    assert m["roc_auc"] == pytest.approx(0.9)
    assert m["intervals"] == {}
    assert m["tar_at_far_1pct_threshold"] is None  # only accepting nothing keeps FAR < 1%

"""The labeled sets the augmentation benchmark trains on."""

import numpy as np
import pytest

from benchmarks.augmentation import labeled_set


def _pool():
    y = np.array([1] * 870 + [2] * 40 + [0] * 50 + [3] * 30)
    pool = np.arange(0, len(y), 1)[::2]  # every other item; the rest is the holdout
    return pool, y


def test_balanced_sets_hold_each_defect_class_at_its_share_from_the_pool_only():
    pool, y = _pool()
    chosen = labeled_set("balanced100", pool, y, seed=0)
    assert len(chosen) == 100 and len(set(chosen.tolist())) == 100
    assert set(chosen.tolist()) <= set(pool.tolist())
    counts = np.bincount(y[chosen], minlength=4)
    assert counts[0] == counts[2] == 11 and counts[3] == 11 and counts[1] == 67
    assert not np.array_equal(chosen, labeled_set("balanced100", pool, y, seed=1))


def test_random_sets_and_the_whole_pool():
    pool, y = _pool()
    chosen = labeled_set("random60", pool, y, seed=3)
    assert len(set(chosen.tolist())) == 60 and set(chosen.tolist()) <= set(pool.tolist())
    assert np.array_equal(chosen, labeled_set("random60", pool, y, seed=3))
    assert np.array_equal(labeled_set("all", pool, y, seed=0), pool)
    with pytest.raises(ValueError, match="unknown labeled set"):
        labeled_set("stratified50", pool, y, seed=0)

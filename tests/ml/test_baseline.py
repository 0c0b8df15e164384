import numpy as np
import pytest

from ml.baseline import fit_linear_probe
from ml.metrics import balanced_accuracy


def clusters(counts, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])[: len(counts)]
    x = np.concatenate(
        [rng.normal(c, spread, size=(n, 2)) for c, n in zip(centers, counts, strict=True)]
    )
    return x, np.repeat(np.arange(len(counts)), counts)


def test_separable_classes_are_learned_perfectly():
    x, y = clusters([30, 30, 30], spread=0.3)
    probe = fit_linear_probe(x, y)
    assert (probe.predict(x) == y).all()
    p = probe.predict_proba(x)
    assert p.shape == (90, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_class_weighting_finds_more_of_the_rare_class():
    x, y = clusters([400, 12], seed=1, spread=1.3)
    weighted = fit_linear_probe(x, y, class_weighting="inverse")
    plain = fit_linear_probe(x, y, class_weighting="none")
    rare_recall = lambda probe: (probe.predict(x)[y == 1] == 1).mean()  # noqa: E731
    assert rare_recall(weighted) > rare_recall(plain)
    assert balanced_accuracy(y, weighted.predict(x), 2) >= balanced_accuracy(y, plain.predict(x), 2)


def test_fit_is_deterministic_and_handles_constant_features_and_unseen_classes():
    x, y = clusters([20, 20])
    x = np.hstack([x, np.ones((40, 1))])
    a, b = fit_linear_probe(x, y, seed=0), fit_linear_probe(x, y, seed=1)
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    probe = fit_linear_probe(x, y, num_classes=3)
    assert probe.predict_proba(x).shape == (40, 3)
    assert probe.predict_proba(x)[:, 2].max() < 1e-6


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError):
        fit_linear_probe(np.zeros((3, 2)), np.array([0, 1]))

"""Temperature scaling: a fitted T undoes over-confidence, changes no predicted class, and
stays at 1 on a holdout too small to fit it."""

import numpy as np
import pytest

from ml.calibration import (
    MIN_CALIBRATION_SIZE,
    apply_temperature,
    calibration_report,
    fit_temperature,
)
from ml.metrics import expected_calibration_error, reliability_bins


def _sampled(n=600, k=4, sharpen=3.0, seed=0):
    """Labels drawn from softmax(z); a model reporting softmax(sharpen * z) is over-confident
    by exactly a temperature of `sharpen`."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, k))
    true_p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in true_p])
    reported = apply_temperature(sharpen * z, 1.0, kind="logits")
    return reported.astype(np.float32), sharpen * z, y


def test_the_fitted_temperature_recovers_the_over_confidence_from_probs_or_logits():
    probs, logits, y = _sampled(sharpen=3.0)
    from_probs = fit_temperature(probs, y)
    assert from_probs == pytest.approx(3.0, rel=0.15)
    assert fit_temperature(logits, y, kind="logits") == pytest.approx(from_probs, rel=1e-3)
    assert fit_temperature(probs, y) == from_probs  # no randomness: the same T again
    calibrated = apply_temperature(probs, from_probs)
    assert calibrated.dtype == np.float32 and calibrated.shape == probs.shape
    assert (calibrated.argmax(axis=1) == probs.argmax(axis=1)).all()
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, probs) / 2


def test_an_under_confident_model_is_sharpened():
    probs, _, y = _sampled(sharpen=0.4, seed=1)
    assert fit_temperature(probs, y) < 0.6


def test_below_the_minimum_size_the_probabilities_stay_as_they_are():
    probs, _, y = _sampled(n=MIN_CALIBRATION_SIZE - 1, sharpen=3.0)
    assert fit_temperature(probs, y) == 1.0
    assert apply_temperature(probs, 1.0) is probs
    report = calibration_report(y, probs)
    assert report["temperature"] == 1.0 and report["fitted"] is False
    assert report["after"] is None
    assert f"{MIN_CALIBRATION_SIZE - 1} items" in report["note"] and "T = 1" in report["note"]


def test_the_report_measures_after_scaling_on_items_that_did_not_choose_t():
    probs, _, y = _sampled(n=400, sharpen=2.5, seed=2)
    report = calibration_report(y, probs, n_bins=10)
    assert report["fitted"] and report["temperature"] > 1.5
    assert len(report["fold_temperatures"]) == 5
    assert report["after"]["ece"] < report["before"]["ece"]
    assert report["after"]["nll"] < report["before"]["nll"]
    for side in ("before", "after"):
        bins = report[side]["bins"]
        assert len(bins) == 10 and sum(b["count"] for b in bins) == 400
    assert "softens" in report["note"]


def test_mc_dropout_stacks_keep_their_shape_and_rows_still_sum_to_one():
    probs, _, _ = _sampled(n=30)
    stack = np.stack([probs, probs[::-1]])
    scaled = apply_temperature(stack, 2.0)
    assert scaled.shape == stack.shape
    np.testing.assert_allclose(scaled.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(scaled[1], apply_temperature(probs[::-1], 2.0), rtol=1e-6)


def test_reliability_bins_add_up_to_the_expected_calibration_error():
    probs, _, y = _sampled(n=300, sharpen=2.0, seed=4)
    bins = reliability_bins(y, probs, n_bins=15)
    filled = [b for b in bins if b["count"]]
    gap = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in filled) / len(y)
    assert gap == pytest.approx(expected_calibration_error(y, probs, n_bins=15))
    assert all(b["low"] < b["confidence"] <= b["high"] for b in filled)
    assert all(b["accuracy"] is None for b in bins if not b["count"])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        fit_temperature(np.ones(4), np.zeros(4, dtype=int))
    with pytest.raises(ValueError):
        apply_temperature(np.ones((2, 2)) / 2, 0.0)

"""The stopping signal: stable predictions plus a flat holdout score mean stop."""

import numpy as np
import pytest

from ml.stopping import agreement, cohen_kappa, stopping_signal


def test_kappa_and_agreement_on_known_cases():
    a = np.array([0, 1, 2, 0, 1, 2])
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert agreement(a, a) == 1.0
    flipped = np.array([1, 2, 0, 1, 2, 0])
    assert agreement(a, flipped) == 0.0
    assert cohen_kappa(a, flipped) < 0
    # Chance level: agreement as high as independent guessing gives kappa 0.
    assert cohen_kappa(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])) == pytest.approx(0.0)
    # Both models predicting one class everywhere did not change anything.
    assert cohen_kappa(np.zeros(5, int), np.zeros(5, int)) == 1.0


def _predictions(changes_per_round, n=500, seed=0):
    rng = np.random.default_rng(seed)
    preds = [rng.integers(0, 4, n)]
    for changes in changes_per_round:
        nxt = preds[-1].copy()
        flip = rng.choice(n, size=changes, replace=False)
        nxt[flip] = (nxt[flip] + 1) % 4
        preds.append(nxt)
    return preds


def test_stops_when_predictions_settle_and_the_metric_is_flat():
    preds = _predictions([200, 120, 60, 2, 1, 0])
    labels = [20, 40, 60, 80, 100, 120, 140]
    metric = [0.50, 0.70, 0.80, 0.85, 0.851, 0.852, 0.851]
    signal = stopping_signal(preds, labels=labels, holdout_metric=metric)
    assert signal.should_stop and signal.predictions_stable and signal.metric_plateaued
    assert len(signal.kappas) == 6 and signal.kappas[0] < 0.8 <= 0.99 <= signal.kappas[-1]
    assert "stopped paying" in signal.message


def test_keeps_going_while_the_model_still_changes_its_mind():
    preds = _predictions([200, 120, 60, 40, 30, 25])
    signal = stopping_signal(preds, labels=list(range(20, 160, 20)), holdout_metric=[0.8] * 7)
    assert signal.metric_plateaued and not signal.predictions_stable
    assert not signal.should_stop
    assert "keep labeling" in signal.message


def test_keeps_going_while_the_holdout_score_still_climbs():
    preds = _predictions([0, 0, 0, 0])
    metric = [0.5, 0.55, 0.6, 0.65, 0.7]
    signal = stopping_signal(preds, labels=[20, 40, 60, 80, 100], holdout_metric=metric)
    assert signal.predictions_stable and not signal.metric_plateaued
    assert signal.recent_gain_per_100_labels == pytest.approx(0.25)
    assert not signal.should_stop


def test_too_few_rounds_never_says_stop():
    signal = stopping_signal(_predictions([0]), labels=[20, 40], holdout_metric=[0.9, 0.9])
    assert not signal.should_stop
    # Stability alone decides when there is no holdout metric.
    assert stopping_signal(_predictions([0, 0, 0])).should_stop

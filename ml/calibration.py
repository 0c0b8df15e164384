"""Temperature scaling: one number that makes a classifier's confidences mean what they say.

A network trained with cross-entropy is usually over-confident: among items it gives 90%,
fewer than 90% are right. Dividing its logits by a temperature ``T > 1`` softens every
prediction alike (``T < 1`` sharpens) without changing any predicted class (Guo et al.,
2017). ``T`` is the value that minimises the negative log-likelihood on held-out labels.

Class probabilities are enough: ``log p`` differs from the logits by a per-item constant,
which the softmax ignores, so ``softmax(log p / T) == softmax(z / T)``.

Pure numpy, deterministic (a golden-section search, no random start).
"""

from __future__ import annotations

import numpy as np

from ml.metrics import expected_calibration_error, log_loss, reliability_bins

# Below this many held-out items a fitted temperature follows the noise of a few items;
# the probabilities are then used as the model gives them (T = 1).
MIN_CALIBRATION_SIZE = 50
# The search range of T; a fit at an end of it says the holdout pulls further than is sane.
T_MIN, T_MAX = 0.05, 20.0
# Folds of the cross-fitted "after" figures: each fold is calibrated by a T fitted on the
# others, so the ECE after scaling is not measured on the labels that chose T.
CROSS_FIT_FOLDS = 5
_EPS = 1e-12


def _log_probs(scores: np.ndarray, kind: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (n, k), got shape {scores.shape}")
    if kind == "logits":
        return scores
    if kind == "probs":
        return np.log(np.clip(scores, _EPS, 1.0))
    raise ValueError(f"kind must be 'probs' or 'logits', got {kind!r}")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    scaled = z / temperature
    top = scaled.max(axis=1, keepdims=True)
    lse = np.log(np.exp(scaled - top).sum(axis=1)) + top[:, 0]
    return float((lse - scaled[np.arange(len(y)), y]).mean())


def fit_temperature(
    scores: np.ndarray,
    y: np.ndarray,
    *,
    kind: str = "probs",
    min_size: int = MIN_CALIBRATION_SIZE,
) -> float:
    """The temperature that minimises the held-out negative log-likelihood.

    ``scores`` are ``(n, k)`` class probabilities (``kind="probs"``) or logits
    (``kind="logits"``), ``y`` the true classes. Returns 1.0 (no change) when fewer than
    ``min_size`` items are given; otherwise a value in ``[T_MIN, T_MAX]``. The NLL is
    unimodal in ``T`` (convex in ``1/T``), so a golden-section search on ``log T`` finds
    it; the same inputs always give the same ``T``.
    """
    y = np.asarray(y, dtype=np.int64)
    z = _log_probs(scores, kind)
    if z.shape[0] != len(y):
        raise ValueError(f"scores has {z.shape[0]} rows for {len(y)} labels")
    if len(y) < max(1, min_size):
        return 1.0
    lo, hi = np.log(T_MIN), np.log(T_MAX)
    ratio = (np.sqrt(5.0) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(z, y, np.exp(a)), _nll(z, y, np.exp(b))
    while hi - lo > 1e-7:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(z, y, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(z, y, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def apply_temperature(scores: np.ndarray, temperature: float, *, kind: str = "probs") -> np.ndarray:
    """Calibrated probabilities ``softmax(z / T)``, same shape and dtype family as ``scores``
    (float32 in, float32 out). ``T = 1`` on probabilities returns them unchanged. Works on
    ``(n, k)`` and on stacks such as MC-dropout draws ``(T, n, k)`` (the last axis is the
    class axis)."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    scores = np.asarray(scores)
    if kind == "probs" and temperature == 1.0:
        return scores
    shape = scores.shape
    flat = scores.reshape(-1, shape[-1])
    calibrated = _softmax(_log_probs(flat, kind) / temperature).reshape(shape)
    out_dtype = scores.dtype if np.issubdtype(scores.dtype, np.floating) else np.float64
    return calibrated.astype(out_dtype, copy=False)


def _folds(y: np.ndarray, folds: int) -> np.ndarray:
    """A fold number per item, dealt round-robin within each class (no randomness)."""
    fold = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        fold[members] = np.arange(len(members)) % folds
    return fold


def calibration_report(
    y: np.ndarray,
    probs: np.ndarray,
    *,
    n_bins: int = 15,
    min_size: int = MIN_CALIBRATION_SIZE,
    folds: int = CROSS_FIT_FOLDS,
) -> dict:
    """Calibration of a model on held-out labels, before and after temperature scaling, as
    JSON-ready values.

    ``temperature`` is fitted on all the given items (it is what later predictions are
    divided by). The ``after`` figures are cross-fitted: each of ``folds`` folds is scaled
    by a temperature fitted on the other folds, so they estimate how calibrated the scaled
    model is on items that did not choose ``T``. Below ``min_size`` items nothing is fitted:
    ``temperature`` is 1, ``fitted`` False, ``after`` None and ``note`` says why.
    """
    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n = len(y)
    report: dict = {
        "n": int(n),
        "n_bins": n_bins,
        "min_size": min_size,
        "before": {
            "ece": expected_calibration_error(y, probs, n_bins=n_bins),
            "nll": log_loss(y, probs),
            "bins": reliability_bins(y, probs, n_bins=n_bins),
        },
    }
    if n < min_size:
        return {
            **report,
            "temperature": 1.0,
            "fitted": False,
            "after": None,
            "note": f"Not fitted: the holdout has {n} item{'s' if n != 1 else ''}, fewer than "
            f"the {min_size} temperature scaling needs, so the model's probabilities are "
            "used as they are (T = 1).",
        }
    temperature = fit_temperature(probs, y, min_size=min_size)
    fold = _folds(y, folds)
    cross_fitted = np.empty_like(probs)
    fold_temperatures = []
    for f in range(folds):
        inside = fold == f
        if not inside.any():
            continue
        t = fit_temperature(probs[~inside], y[~inside], min_size=1)
        fold_temperatures.append(t)
        cross_fitted[inside] = apply_temperature(probs[inside], t)
    at_bound = temperature <= T_MIN * 1.001 or temperature >= T_MAX / 1.001
    direction = "softens" if temperature > 1 else "sharpens"
    note = (
        f"T = {temperature:.2f} fitted on {n} holdout items: it {direction} every "
        "prediction alike and changes no predicted class. The after figures are "
        f"cross-fitted ({folds} folds), so they are not measured on the labels that chose T."
    )
    if at_bound:
        note += " T reached the end of its search range: the holdout is nearly all right or "
        note += "all wrong, so treat the calibrated confidences with care."
    return {
        **report,
        "temperature": temperature,
        "fitted": True,
        "at_bound": bool(at_bound),
        "fold_temperatures": fold_temperatures,
        "after": {
            "ece": expected_calibration_error(y, cross_fitted, n_bins=n_bins),
            "nll": log_loss(y, cross_fitted),
            "bins": reliability_bins(y, cross_fitted, n_bins=n_bins),
        },
        "note": note,
    }

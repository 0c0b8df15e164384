"""Classification metrics that stay honest under class imbalance.

Plain numpy: balanced accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix
and the expected calibration error. Conventions follow scikit-learn's defaults so that numbers
match what ML engineers already know: a class absent from ``y_true`` does not count towards
balanced accuracy, and macro-F1 averages over the classes seen in ``y_true`` or ``y_pred``.
"""

from __future__ import annotations

import numpy as np


def _as_labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    return y.astype(np.int64, copy=False)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)``: rows are true classes, columns predictions."""
    y_true, y_pred = _as_labels(y_true), _as_labels(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in length")
    if y_true.size and (
        min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes
    ):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    flat = y_true * num_classes + y_pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class; 0/0 counts as 0."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    return precision, recall, f1, support


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean recall over the classes present in ``y_true`` (0.0 for empty input)."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    _, recall, _, support = _per_class(cm)
    present = support > 0
    return float(recall[present].mean()) if present.any() else 0.0


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean F1 over the classes that occur in ``y_true`` or ``y_pred``."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    _, _, f1, support = _per_class(cm)
    seen = (support > 0) | (cm.sum(axis=0) > 0)
    return float(f1[seen].mean()) if seen.any() else 0.0


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-class confidence over ``n_bins`` equal-width bins.

    The weighted mean gap between confidence and accuracy: 0 for a perfectly calibrated
    model, large when a model is sure and wrong (or right but timid).
    """
    y_true = _as_labels(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if len(y_true) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
    # Bin i holds confidences in (edge_i, edge_{i+1}]; confidence 0 joins the first bin.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    return float(np.abs(acc_sum - conf_sum).sum() / len(y_true))


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> list[dict]:
    """The reliability diagram behind :func:`expected_calibration_error`, bin by bin.

    Same equal-width bins of the top-class confidence; each bin gives its edges, ``count``,
    mean ``confidence`` and ``accuracy`` (both None for an empty bin), so a figure on three
    items reads as such.
    """
    y_true = _as_labels(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if n_bins < 1:
        raise ValueError("n_bins must be positive")
    if len(y_true):
        confidence = probs.max(axis=1)
        correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
        bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    else:
        confidence = correct = np.empty(0)
        bins = np.empty(0, dtype=np.int64)
    counts = np.bincount(bins, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    return [
        {
            "low": i / n_bins,
            "high": (i + 1) / n_bins,
            "count": int(counts[i]),
            "confidence": float(conf_sum[i] / counts[i]) if counts[i] else None,
            "accuracy": float(acc_sum[i] / counts[i]) if counts[i] else None,
        }
        for i in range(n_bins)
    ]


def log_loss(y_true: np.ndarray, probs: np.ndarray, *, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class (0.0 for empty input)."""
    y_true = _as_labels(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if len(y_true) == 0:
        return 0.0
    picked = probs[np.arange(len(y_true)), y_true]
    return float(-np.log(np.clip(picked, eps, 1.0)).mean())


def classification_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    *,
    class_names: list[str] | None = None,
    n_bins: int = 15,
) -> dict:
    """Every metric Loupe reports for a model on a labeled set, as JSON-ready values.

    ``probs`` is ``(n, k)`` class probabilities; predictions are their argmax. Returns a dict
    with ``balanced_accuracy``, ``macro_f1``, ``accuracy``, ``ece``, ``n``, ``per_class``
    (list of ``{class, precision, recall, f1, support}``) and ``confusion_matrix`` (rows are
    true classes).
    """
    y_true = _as_labels(y_true)
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[0] != len(y_true):
        raise ValueError(f"probs must be (n, k) with n={len(y_true)}, got {probs.shape}")
    num_classes = probs.shape[1]
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    precision, recall, f1, support = _per_class(cm)
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.trace(cm) / len(y_true)) if len(y_true) else 0.0,
        "balanced_accuracy": balanced_accuracy(y_true, y_pred, num_classes),
        "macro_f1": macro_f1(y_true, y_pred, num_classes),
        "ece": expected_calibration_error(y_true, probs, n_bins=n_bins),
        "per_class": [
            {
                "class": class_names[i],
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(num_classes)
        ],
        "confusion_matrix": cm.tolist(),
    }


def bootstrap_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    num_classes: int,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of ``accuracy``, ``balanced_accuracy`` and ``macro_f1``.

    Resampling is stratified by true class: each resample keeps every class's holdout size,
    so a rare class never drops out of a resample (which would flatter balanced accuracy);
    the interval shows how much the figure could move on another holdout of the same sizes.
    Returns ``{metric: [low, high]}``; empty input gives an empty dict.
    """
    y_true, y_pred = _as_labels(y_true), _as_labels(y_pred)
    if len(y_true) == 0 or n_resamples < 1:
        return {}
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(y_true):
        members = np.flatnonzero(y_true == c)
        picks.append(members[rng.integers(0, len(members), size=(n_resamples, len(members)))])
    rows = np.concatenate(picks, axis=1)  # (n_resamples, n): indices of one resample per row
    flat = y_true[rows] * num_classes + y_pred[rows]
    offsets = (np.arange(n_resamples) * num_classes * num_classes)[:, None]
    cms = np.bincount((flat + offsets).ravel(), minlength=n_resamples * num_classes**2)
    cms = cms.reshape(n_resamples, num_classes, num_classes).astype(np.float64)
    tp = np.diagonal(cms, axis1=1, axis2=2)
    support, predicted = cms.sum(axis=2), cms.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    seen = present | (predicted > 0)
    values = {
        "accuracy": tp.sum(axis=1) / len(y_true),
        "balanced_accuracy": (recall * present).sum(axis=1) / present.sum(axis=1),
        "macro_f1": (f1 * seen).sum(axis=1) / np.maximum(seen.sum(axis=1), 1),
    }
    tail = (1 - level) / 2 * 100
    return {
        name: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))]
        for name, v in values.items()
    }


def proportion_interval(successes: int, n: int, *, level: float = 0.95) -> list[float] | None:
    """Wilson score interval of a proportion (e.g. accuracy on a random sample); None for
    n = 0. Unlike the normal approximation it stays inside [0, 1] for small n."""
    if n <= 0:
        return None
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]

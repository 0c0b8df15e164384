"""How well a verifier tells "same" pairs from "different" ones.

Scores are similarities: higher means more likely the same (``p(same)``, or the negative
distance). ROC AUC is threshold-free; the equal error rate (EER) is where the false accept
and false reject rates meet; TAR@FAR is the share of true pairs accepted at the strictest
threshold that lets through at most that share of impostor pairs, what an access system
is tuned to. With ``n`` different pairs no FAR below ``1/n`` can be told from zero, so the
figures say which resolution they had.
"""

from __future__ import annotations

import numpy as np


def _check(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{y.shape[0]} labels but {s.shape[0]} scores")
    return y, s


def roc_auc(y_true, scores) -> float | None:
    """Probability that a random same pair outscores a random different pair (ties count
    half), from ranks; ``None`` when one of the two kinds is missing."""
    y, s = _check(y_true, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(far, tar, thresholds)``: accepting ``score >= thresholds[i]`` gives false accept
    rate ``far[i]`` and true accept rate ``tar[i]``; the first point accepts nothing."""
    y, s = _check(y_true, scores)
    thresholds = np.unique(s)[::-1]
    pos = np.sort(s[y])
    neg = np.sort(s[~y])
    accepted_pos = len(pos) - np.searchsorted(pos, thresholds, side="left")
    accepted_neg = len(neg) - np.searchsorted(neg, thresholds, side="left")
    tar = np.concatenate([[0.0], accepted_pos / max(len(pos), 1)])
    far = np.concatenate([[0.0], accepted_neg / max(len(neg), 1)])
    return far, tar, np.concatenate([[np.inf], thresholds])


def equal_error_rate(y_true, scores) -> tuple[float | None, float | None]:
    """``(eer, threshold)``: where false accepts and false rejects are equally frequent
    (the mean of the two at the closest point of the curve); ``(None, None)`` without both
    kinds of pairs."""
    y, s = _check(y_true, scores)
    if y.all() or not y.any():
        return None, None
    far, tar, thresholds = roc_curve(y, s)
    frr = 1.0 - tar
    i = int(np.argmin(np.abs(far - frr)))
    threshold = (
        thresholds[i] if np.isfinite(thresholds[i]) else thresholds[min(i + 1, len(thresholds) - 1)]
    )
    return float((far[i] + frr[i]) / 2.0), float(threshold)


def tar_at_far(y_true, scores, far: float) -> tuple[float | None, float | None]:
    """``(tar, threshold)`` at the lowest threshold whose false accept rate is at most
    ``far`` (``inf`` when only accepting nothing keeps it there); ``(None, None)`` without
    both kinds of pairs."""
    y, s = _check(y_true, scores)
    if y.all() or not y.any():
        return None, None
    far_curve, tar, thresholds = roc_curve(y, s)
    ok = np.flatnonzero(far_curve <= far + 1e-12)
    i = int(ok[-1])  # far only grows along the curve, so the last allowed point is best
    return float(tar[i]), float(thresholds[i])


def _bootstrap(y: np.ndarray, s: np.ndarray, n_resamples: int, level: float, seed: int) -> dict:
    """Percentile intervals of ROC AUC and EER, resampling same and different pairs apart
    (each resample keeps both counts, so neither kind drops out)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    aucs, eers = [], []
    for _ in range(n_resamples):
        rows = np.concatenate(
            [pos[rng.integers(0, len(pos), len(pos))], neg[rng.integers(0, len(neg), len(neg))]]
        )
        aucs.append(roc_auc(y[rows], s[rows]))
        eers.append(equal_error_rate(y[rows], s[rows])[0])
    tail = (1 - level) / 2 * 100
    return {
        name: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))]
        for name, v in (("roc_auc", aucs), ("eer", eers))
    }


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: a threshold that accepts nothing reads as None."""
    return value if value is not None and np.isfinite(value) else None


def pair_metrics(
    y_true,
    scores,
    *,
    threshold: float | None = None,
    n_resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Every figure of a verifier on labeled pairs, JSON-ready.

    ``roc_auc``, ``eer`` (with ``eer_threshold``), ``tar_at_far_1pct`` and
    ``tar_at_far_0_1pct`` (with their thresholds; None where only accepting nothing keeps
    the FAR that low), ``far_resolution`` (``1 / n_different``:
    a FAR below it reads as zero), the pair counts and, when ``threshold`` is given (the
    operating point, e.g. ``p(same) >= 0.5``), ``accuracy``, ``far`` and ``tar`` there.
    ``intervals`` holds bootstrap intervals of ROC AUC and EER (``n_resamples=0``: none).
    """
    y, s = _check(y_true, scores)
    n_same, n_diff = int(y.sum()), int((~y).sum())
    eer, eer_threshold = equal_error_rate(y, s)
    tar1, thr1 = tar_at_far(y, s, 0.01)
    tar01, thr01 = tar_at_far(y, s, 0.001)
    result = {
        "roc_auc": roc_auc(y, s),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "tar_at_far_1pct": tar1,
        "tar_at_far_1pct_threshold": _finite(thr1),
        "tar_at_far_0_1pct": tar01,
        "tar_at_far_0_1pct_threshold": _finite(thr01),
        "far_resolution": 1.0 / n_diff if n_diff else None,
        "n_pairs": int(len(y)),
        "n_same": n_same,
        "n_different": n_diff,
        "intervals": {},
    }
    if threshold is not None:
        accepted = s >= threshold
        result.update(
            threshold=float(threshold),
            accuracy=float((accepted == y).mean()) if len(y) else None,
            far=float(accepted[~y].mean()) if n_diff else None,
            tar=float(accepted[y].mean()) if n_same else None,
        )
    if n_same and n_diff and n_resamples > 0:
        result["intervals"] = _bootstrap(y, s, n_resamples, level, seed)
    return result

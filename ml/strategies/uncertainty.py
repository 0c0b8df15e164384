"""Strategies that rank each pool item on its own: random and uncertainty sampling.

Every score here is "higher means more wanted", so one top-k serves them all.
"""

from __future__ import annotations

import numpy as np

from ml.strategies.base import ANY_TASK_TYPE, AcquisitionInputs, Strategy, top_k

_EPS = 1e-12


def top_two(probs: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Largest and second-largest value of each row.

    Pools have many rows and few classes; a reduction along the short axis is slow in
    numpy, so this walks the class columns with in-place maxima over cache-sized chunks,
    which is several times faster than ``np.partition`` or ``max(axis=1)`` on a million rows.
    """
    n, k = probs.shape
    first = np.empty(n, dtype=probs.dtype)
    second = np.full(n, -np.inf, dtype=probs.dtype)
    for start in range(0, n, chunk):
        block = probs[start : start + chunk]
        m1 = block[:, 0].copy()
        m2 = np.full_like(m1, -np.inf)
        low = np.empty_like(m1)
        for j in range(1, k):
            column = block[:, j]
            np.minimum(m1, column, out=low)
            np.maximum(m2, low, out=m2)
            np.maximum(m1, column, out=m1)
        first[start : start + chunk] = m1
        second[start : start + chunk] = m2
    return first, second


def least_confidence_scores(probs: np.ndarray) -> np.ndarray:
    """``1 - max_c p_c``: how far the top class is from certainty."""
    first, _ = top_two(np.asarray(probs))
    return 1.0 - first.astype(np.float64)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_top1 - p_top2)``: items whose two best classes are close come first."""
    probs = np.asarray(probs)
    if probs.shape[1] == 1:
        return np.zeros(probs.shape[0])
    first, second = top_two(probs)
    return 1.0 - (first.astype(np.float64) - second)


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of the predicted distribution (nats)."""
    p = probs.astype(np.float64, copy=False)
    return -(p * np.log(np.clip(p, _EPS, 1.0))).sum(axis=1)


def bald_scores(mc_probs: np.ndarray) -> np.ndarray:
    """Mutual information between the prediction and the weights (BALD).

    ``H(mean_t p_t) - mean_t H(p_t)`` over ``T`` MC-dropout passes: high when the passes are
    individually confident but disagree, i.e. when the model, not the item, is unsure.
    """
    mc = mc_probs.astype(np.float64, copy=False)
    mean = mc.mean(axis=0)
    entropy_of_mean = -(mean * np.log(np.clip(mean, _EPS, 1.0))).sum(axis=1)
    mean_entropy = -(mc * np.log(np.clip(mc, _EPS, 1.0))).sum(axis=2).mean(axis=0)
    return np.maximum(entropy_of_mean - mean_entropy, 0.0)


UNCERTAINTY_SCORES = {
    "least_confidence": least_confidence_scores,
    "margin": margin_scores,
    "entropy": entropy_scores,
}


def uncertainty_scores(inputs: AcquisitionInputs, measure: str) -> np.ndarray:
    """Per-item uncertainty by name (``least_confidence``, ``margin``, ``entropy``, ``bald``)."""
    if measure == "bald":
        inputs.require("mc_probs")
        return bald_scores(inputs.mc_probs)
    inputs.require("probs")
    try:
        return UNCERTAINTY_SCORES[measure](inputs.probs)
    except KeyError:
        raise ValueError(f"unknown uncertainty measure {measure!r}") from None


class RandomStrategy(Strategy):
    """Uniform random sampling: the honest baseline every other strategy is measured against."""

    name = "random"
    task_types = (ANY_TASK_TYPE,)

    def _select(self, inputs, batch_size, rng):
        indices = rng.choice(inputs.n, size=batch_size, replace=False).astype(np.int64)
        return indices, np.zeros(batch_size)


class UncertaintyStrategy(Strategy):
    """Top-``b`` pool items by one uncertainty measure."""

    def __init__(self, measure: str) -> None:
        if measure not in (*UNCERTAINTY_SCORES, "bald"):
            raise ValueError(f"unknown uncertainty measure {measure!r}")
        self.measure = measure
        self.name = measure
        self.requires = ("mc_probs",) if measure == "bald" else ()

    def _select(self, inputs, batch_size, rng):
        scores = uncertainty_scores(inputs, self.measure)
        indices = top_k(scores, batch_size)
        return indices, scores[indices]

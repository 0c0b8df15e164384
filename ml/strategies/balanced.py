"""Class-balanced acquisition: spend the batch where the labeled set is short.

Rare classes are the normal case in inspection data. Uncertainty alone keeps asking about
the boundary between common classes; this strategy first splits the batch into per-class
quotas (toward the project's class targets, or toward balance when there are none), then
fills each quota from the items the model currently predicts as that class.
"""

from __future__ import annotations

import numpy as np

from ml.strategies.base import AcquisitionInputs, Strategy, top_k
from ml.strategies.uncertainty import uncertainty_scores


def class_quotas(
    batch_size: int, counts: np.ndarray, targets: np.ndarray | None = None
) -> np.ndarray:
    """Split ``batch_size`` over classes in proportion to how far each is below its goal.

    With ``targets`` the goal is each class's target; once every target is met (or without
    targets) the goal is balance, i.e. the largest class count. Quotas are proportional to
    the gaps (largest-remainder rounding), so every short class gets a share; a budget
    larger than all gaps closes them and spreads the rest to keep counts even.
    """
    counts = np.asarray(counts, dtype=np.float64)
    k = counts.shape[0]
    gap = np.zeros(k)
    if targets is not None:
        gap = np.maximum(np.ceil(np.asarray(targets, dtype=np.float64) - counts), 0.0)
    if gap.sum() == 0:
        gap = counts.max() - counts
    if gap.sum() == 0:
        gap = np.ones(k)
    if batch_size >= gap.sum():
        quotas = gap.astype(np.int64)
        for _ in range(batch_size - int(quotas.sum())):
            quotas[int(np.argmin(counts + quotas))] += 1
        return quotas
    share = gap / gap.sum() * batch_size
    quotas = np.floor(share).astype(np.int64)
    leftover = batch_size - int(quotas.sum())
    order = np.lexsort((-gap, -(share - quotas)))
    quotas[order[:leftover]] += 1
    return quotas


def within_class_scores(inputs: AcquisitionInputs, within: str) -> np.ndarray:
    """How to rank the items predicted as one class: by uncertainty or by confidence."""
    if within == "confidence":
        return inputs.probs.max(axis=1).astype(np.float64)
    return uncertainty_scores(inputs, within)


class ClassBalancedStrategy(Strategy):
    """Per-class quotas from label counts and targets, filled by predicted class.

    ``within`` ranks candidates inside a class (``margin``, ``entropy``,
    ``least_confidence``, ``bald`` or ``confidence``). When the model predicts too few
    items of a class, the quota is filled with the items that have the highest probability
    of that class, which is how a class the model has barely seen gets discovered.
    """

    name = "class_balanced"

    def __init__(self, within: str = "margin") -> None:
        self.within = within

    def _select(self, inputs, batch_size, rng):
        k = inputs.num_classes
        counts = inputs.labeled_class_counts
        counts = np.zeros(k) if counts is None else np.asarray(counts, dtype=np.float64)
        quotas = class_quotas(batch_size, counts, inputs.class_targets)
        base = within_class_scores(inputs, self.within)
        predicted = inputs.probs.argmax(axis=1)
        taken = np.zeros(inputs.n, dtype=bool)
        picks: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        # Smallest classes first, so their candidates are not used up by larger quotas.
        for c in np.argsort(counts, kind="stable"):
            need = int(quotas[c])
            if need == 0:
                continue
            candidates = np.flatnonzero((predicted == c) & ~taken)
            chosen = candidates[top_k(base[candidates], need)]
            if chosen.shape[0] < need:
                rest = np.flatnonzero(~taken)
                rest = rest[~np.isin(rest, chosen)]
                extra = rest[
                    top_k(inputs.probs[rest, c].astype(np.float64), need - chosen.shape[0])
                ]
                chosen = np.concatenate([chosen, extra])
            taken[chosen] = True
            picks.append(chosen)
            scores.append(base[chosen])
        indices = np.concatenate(picks) if picks else np.empty(0, np.int64)
        return indices, np.concatenate(scores) if scores else np.empty(0)

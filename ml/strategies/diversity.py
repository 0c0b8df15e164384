"""Strategies that look at the batch as a whole: core-set and BADGE."""

from __future__ import annotations

import numpy as np

from ml.strategies.base import Strategy
from ml.strategies.clustering import as_float_matrix, k_center_greedy


class CoresetStrategy(Strategy):
    """Core-set by greedy k-center on embeddings (Sener & Savarese, 2018).

    Picks items far from every labeled item and from each other, so the labeled set
    covers the embedding space. Scores are the distance to the nearest center when picked.
    """

    name = "coreset"

    def _select(self, inputs, batch_size, rng):
        inputs.require("embeddings")
        return k_center_greedy(
            inputs.embeddings, batch_size, centers=inputs.labeled_embeddings, rng=rng
        )


def badge_select(
    probs: np.ndarray, embeddings: np.ndarray, batch_size: int, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """BADGE (Ash et al., 2020): k-means++ seeding on hallucinated gradient embeddings.

    The gradient of the cross-entropy at the predicted label with respect to the last
    layer is ``(p - onehot(argmax p)) ⊗ h``. Its inner products factor as
    ``(a_i . a_j) * (h_i . h_j)``, so distances are computed from the two small factors
    and the ``(n, k*d)`` gradient matrix is never built.
    """
    a = np.asarray(probs, dtype=np.float64).copy()
    n = a.shape[0]
    a[np.arange(n), a.argmax(axis=1)] -= 1.0
    h = as_float_matrix(embeddings).astype(np.float64)
    norms = np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", h, h)
    batch_size = min(batch_size, n)
    chosen = np.empty(batch_size, dtype=np.int64)
    scores = np.empty(batch_size, dtype=np.float64)
    min_d = np.full(n, np.inf)
    for t in range(batch_size):
        if t == 0:
            # The largest gradient is the item the model would change most for.
            i = int(np.argmax(norms))
            scores[t] = float(norms[i])
        else:
            weights = np.maximum(min_d, 0.0)
            total = weights.sum()
            if total > 0:
                i = int(rng.choice(n, p=weights / total))
            else:  # the rest coincide with chosen items: any unchosen one will do
                i = int(rng.choice(np.flatnonzero(min_d >= 0)))
            scores[t] = float(weights[i])
        chosen[t] = i
        d = norms + norms[i] - 2.0 * (a @ a[i]) * (h @ h[i])
        np.minimum(min_d, np.maximum(d, 0.0), out=min_d)
        min_d[i] = -1.0
    return chosen, scores


class BadgeStrategy(Strategy):
    """BADGE: uncertainty (gradient length) and diversity (k-means++ spread) in one draw."""

    name = "badge"

    def _select(self, inputs, batch_size, rng):
        inputs.require("embeddings")
        return badge_select(inputs.probs, inputs.embeddings, batch_size, rng=rng)

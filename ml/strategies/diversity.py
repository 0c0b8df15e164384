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
    requires = ("embeddings",)

    def _select(self, inputs, batch_size, rng):
        inputs.require("embeddings")
        return k_center_greedy(
            inputs.embeddings, batch_size, centers=inputs.labeled_embeddings, rng=rng
        )


def badge_select(
    probs: np.ndarray,
    embeddings: np.ndarray,
    batch_size: int,
    *,
    rng: np.random.Generator,
    block: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """BADGE (Ash et al., 2020): k-means++ seeding on hallucinated gradient embeddings.

    The gradient of the cross-entropy at the predicted label with respect to the last
    layer is ``(p - onehot(argmax p)) ⊗ h``. Its inner products factor as
    ``(a_i . a_j) * (h_i . h_j)``, so distances are computed from the two small factors
    and the ``(n, k*d)`` gradient matrix is never built.

    D^2 sampling is done exactly, but in blocks: ``block`` proposals are drawn from the
    distances as they were at the start of the block and accepted with probability
    ``current / stale`` (distances only shrink, so this is plain rejection sampling).
    Their inner products with the pool come from one matrix product, so the pool is read
    once per block rather than once per pick.
    """
    a = np.asarray(probs, dtype=np.float32).copy()
    n = a.shape[0]
    a[np.arange(n), a.argmax(axis=1)] -= 1.0
    h = as_float_matrix(embeddings).astype(np.float32, copy=False)
    norms = np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", h, h)
    batch_size = min(batch_size, n)
    chosen = np.empty(batch_size, dtype=np.int64)
    scores = np.empty(batch_size, dtype=np.float64)
    min_d = np.full(n, np.inf, dtype=np.float32)

    def update(a_dots: np.ndarray, h_dots: np.ndarray, i: int) -> None:
        d = a_dots * h_dots
        d *= -2.0
        d += norms
        d += norms[i]
        np.maximum(d, 0.0, out=d)
        np.minimum(min_d, d, out=min_d)
        min_d[i] = -1.0  # never picked twice

    # The largest gradient is the item the model would change most for.
    first = int(np.argmax(norms))
    chosen[0], scores[0] = first, float(norms[first])
    update(np.einsum("ij,j->i", a, a[first]), np.einsum("ij,j->i", h, h[first]), first)
    t = 1
    while t < batch_size:
        stale = np.maximum(min_d, 0.0)
        cumulative = np.cumsum(stale, dtype=np.float64)
        total = cumulative[-1]
        if total <= 0:  # the rest coincide with chosen items: take unchosen ones at random
            rest = rng.permutation(np.flatnonzero(min_d >= 0))[: batch_size - t]
            chosen[t : t + rest.shape[0]], scores[t : t + rest.shape[0]] = rest, 0.0
            break
        draws = np.searchsorted(cumulative, rng.random(block) * total, side="right")
        proposals = np.minimum(draws, n - 1)
        a_block = a[proposals] @ a.T
        h_block = h[proposals] @ h.T
        for r, j in enumerate(proposals.tolist()):
            current = max(float(min_d[j]), 0.0)
            if current <= 0 or rng.random() * stale[j] >= current:
                continue
            chosen[t], scores[t] = j, current
            update(a_block[r], h_block[r], j)
            t += 1
            if t == batch_size:
                break
    return chosen, scores


class BadgeStrategy(Strategy):
    """BADGE: uncertainty (gradient length) and diversity (k-means++ spread) in one draw."""

    name = "badge"
    requires = ("embeddings",)

    def _select(self, inputs, batch_size, rng):
        inputs.require("embeddings")
        return badge_select(inputs.probs, inputs.embeddings, batch_size, rng=rng)

"""Hybrid acquisition: an uncertainty shortlist, then diversity inside it.

Plain top-``b`` uncertainty tends to return near-duplicates (the same confusing part, shot
ten times). Shortlisting ``factor * b`` uncertain items and then spreading the batch over
them keeps most of the uncertainty gain and removes the redundancy (Zhdanov, 2019).
"""

from __future__ import annotations

import numpy as np

from ml.strategies.base import Strategy, top_k
from ml.strategies.clustering import k_center_greedy, kmeans, nearest_center
from ml.strategies.uncertainty import uncertainty_scores


def diverse_subset(
    embeddings: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
    *,
    method: str,
    centers: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Positions of ``batch_size`` spread-out rows of ``embeddings``.

    ``kmeans``: weighted k-means into ``batch_size`` clusters, the row nearest each
    centroid. ``kcenter``: greedy k-center, also far from the labeled ``centers``.
    """
    if method == "kcenter":
        chosen, _ = k_center_greedy(embeddings, batch_size, centers=centers, rng=rng)
        return chosen
    if method != "kmeans":
        raise ValueError(f"unknown diversity method {method!r}")
    centroids, _ = kmeans(embeddings, batch_size, rng=rng, weights=weights)
    # The row nearest each centroid; a row claimed twice leaves a gap filled by weight.
    owner, _ = nearest_center(centroids, embeddings)
    chosen = list(dict.fromkeys(owner.tolist()))
    if len(chosen) < batch_size:
        order = np.argsort(-weights, kind="stable")
        seen = set(chosen)
        chosen += [i for i in order.tolist() if i not in seen][: batch_size - len(chosen)]
    return np.asarray(chosen[:batch_size], dtype=np.int64)


class HybridStrategy(Strategy):
    """Top ``shortlist_factor * b`` by ``measure``, then ``diversity`` over embeddings."""

    name = "hybrid"

    def __init__(
        self, measure: str = "margin", shortlist_factor: float = 5.0, diversity: str = "kmeans"
    ) -> None:
        if shortlist_factor < 1:
            raise ValueError("shortlist_factor must be >= 1")
        self.measure = measure
        self.shortlist_factor = shortlist_factor
        self.diversity = diversity

    def _select(self, inputs, batch_size, rng):
        scores = uncertainty_scores(inputs, self.measure)
        shortlist = top_k(scores, int(np.ceil(self.shortlist_factor * batch_size)))
        if inputs.embeddings is None or shortlist.shape[0] <= batch_size:
            chosen = shortlist[:batch_size]
        else:
            sub = diverse_subset(
                inputs.embeddings[shortlist],
                scores[shortlist],
                batch_size,
                method=self.diversity,
                centers=inputs.labeled_embeddings,
                rng=rng,
            )
            chosen = shortlist[sub]
            # Report the batch in priority order: most uncertain first.
            chosen = chosen[np.argsort(-scores[chosen], kind="stable")]
        return chosen, scores[chosen]

"""Class discovery: explore the regions of the pool that no label covers yet.

A model never trained on a class puts no uncertainty on it, so uncertainty sampling cannot
find a defect type nobody has labeled. This strategy clusters the pool together with the
labeled items into ``labeled + batch`` clusters and takes, from the largest clusters that
hold no labeled item, their most typical member (TypiClust, Hacohen et al. 2022, made aware
of the labeled set). When fewer uncovered clusters exist than the batch needs, the rest is
filled by novelty: the items farthest from every labeled item and every pick (k-center).
"""

from __future__ import annotations

import numpy as np

from ml.strategies.base import Strategy
from ml.strategies.clustering import as_float_matrix, k_center_greedy, kmeans, min_sq_distances
from ml.strategies.cold_start import typicality

# Pool items clustered at most (a random sample of a larger pool): k-means cost grows with
# items x clusters, and the uncovered regions of a pool show in a sample of this size.
CLUSTER_SAMPLE = 4000
# Labeled items clustered at most: each one adds a cluster, and k-means cost grows with them.
LABELED_SAMPLE = 1000
# Members of one cluster compared for typicality (all pairs are computed).
TYPICALITY_SAMPLE = 500


def _normalised(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    centred = x - mean
    return centred / (np.linalg.norm(centred, axis=1, keepdims=True) + 1e-12)


class DiscoveryStrategy(Strategy):
    """Typical items of the largest pool clusters that hold no label, then novelty.

    Scores are the worth of the pick's cluster (novelty times the square root of its share
    of the pool); novelty picks score half their distance to the nearest labeled item or
    earlier pick.
    """

    name = "discovery"
    requires = ("embeddings",)

    def _select(self, inputs, batch_size, rng):
        inputs.require("embeddings")
        pool = as_float_matrix(inputs.embeddings).astype(np.float64)
        labeled = inputs.labeled_embeddings
        labeled = (
            np.empty((0, pool.shape[1]))
            if labeled is None or len(labeled) == 0
            else as_float_matrix(labeled).astype(np.float64)
        )
        if labeled.shape[0] > LABELED_SAMPLE:
            labeled = labeled[rng.choice(labeled.shape[0], size=LABELED_SAMPLE, replace=False)]
        sample = np.arange(pool.shape[0])
        if sample.shape[0] > CLUSTER_SAMPLE:
            sample = np.sort(rng.choice(sample, size=CLUSTER_SAMPLE, replace=False))
        # Cosine geometry: the scale of penultimate features says little about the kind.
        mean = np.concatenate([pool[sample], labeled]).mean(axis=0)
        points = np.concatenate([_normalised(pool[sample], mean), _normalised(labeled, mean)])
        n_sample = sample.shape[0]
        k = min(points.shape[0], labeled.shape[0] + batch_size)
        centroids, assignment = kmeans(points, k, rng=rng)
        covered = np.zeros(k, dtype=bool)
        covered[assignment[n_sample:]] = True
        sizes = np.bincount(assignment[:n_sample], minlength=k)
        novelty = np.ones(k)
        if labeled.shape[0]:
            novelty = np.sqrt(min_sq_distances(centroids, points[n_sample:]))
        # A single item is an outlier, not a kind of item: clusters of one come last.
        worth = novelty * np.sqrt(sizes / n_sample) * np.where(sizes > 1, 1.0, 1e-3)
        order = np.lexsort((np.arange(k), -worth))
        chosen: list[int] = []
        scores: list[float] = []
        for cluster in order:
            if len(chosen) == batch_size or sizes[cluster] == 0:
                break
            if covered[cluster]:
                continue
            members = np.flatnonzero(assignment[:n_sample] == cluster)
            if members.shape[0] > TYPICALITY_SAMPLE:
                members = rng.choice(members, size=TYPICALITY_SAMPLE, replace=False)
            best = members[int(np.argmax(typicality(points[members])))]
            chosen.append(int(sample[best]))
            scores.append(float(worth[cluster]))
        if len(chosen) < batch_size:
            rest = np.setdiff1d(np.arange(pool.shape[0]), chosen)
            centers = np.concatenate([_normalised(labeled, mean), _normalised(pool[chosen], mean)])
            extra, distance = k_center_greedy(
                _normalised(pool[rest], mean),
                batch_size - len(chosen),
                centers=centers if centers.shape[0] else None,
                rng=rng,
            )
            chosen += rest[extra].tolist()
            scores += (np.asarray(distance) / 2.0).tolist()
        return np.asarray(chosen, dtype=np.int64), np.asarray(scores, dtype=np.float64)

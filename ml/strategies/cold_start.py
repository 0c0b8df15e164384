"""The first batch, before any model exists.

Without a model there is no uncertainty to ask about. What is left is the metadata
(source, camera, production line, day) and, when a pretrained backbone is available,
embeddings: cover the strata, or cover the dense regions of the embedding space.
"""

from __future__ import annotations

import numpy as np

from ml.strategies.clustering import kmeans, nearest_center

COLD_START_METHODS = ("stratified", "typicality", "kmeans", "stratified_typicality")

# Typicality is a k-nearest-neighbour density; beyond this many items per cluster a random
# subsample estimates it just as well and keeps the cost quadratic in a small number.
_TYPICALITY_SAMPLE = 2000


def _allocation(strata: np.ndarray, n: int, batch_size: int, rng):
    """(group of each item, items per group): proportional, every stratum one item first."""
    strata = np.asarray(strata)
    if strata.shape[0] != n:
        raise ValueError(f"strata must have one entry per item ({n}), got {strata.shape[0]}")
    groups, group_of = np.unique(strata, return_inverse=True)
    sizes = np.bincount(group_of, minlength=len(groups)).astype(np.float64)
    # Proportional allocation, but every stratum gets one item while the budget allows,
    # so a rare source or camera is seen in the very first batch.
    alloc = np.zeros(len(groups), dtype=np.int64)
    if batch_size < len(groups):
        alloc[rng.choice(len(groups), size=batch_size, replace=False, p=sizes / sizes.sum())] = 1
    else:
        alloc += 1
        share = sizes / sizes.sum() * (batch_size - len(groups))
        alloc += np.floor(share).astype(np.int64)
        leftover = batch_size - int(alloc.sum())
        order = np.argsort(-(share - np.floor(share)), kind="stable")
        alloc[order[:leftover]] += 1
    return group_of, np.minimum(alloc, sizes.astype(np.int64))


def _top_up(chosen: np.ndarray, n: int, batch_size: int, rng) -> np.ndarray:
    short = batch_size - chosen.shape[0]
    if short > 0:  # some strata were smaller than their share
        rest = np.setdiff1d(np.arange(n), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=short, replace=False)])
    return chosen


def _stratified(n: int, batch_size: int, strata: np.ndarray | None, rng) -> np.ndarray:
    if strata is None:
        return rng.permutation(n)[:batch_size].astype(np.int64)
    group_of, alloc = _allocation(strata, n, batch_size, rng)
    picks = []
    for g in range(len(alloc)):
        members = np.flatnonzero(group_of == g)
        picks.append(rng.choice(members, size=alloc[g], replace=False))
    chosen = np.concatenate(picks).astype(np.int64)
    return rng.permutation(_top_up(chosen, n, batch_size, rng))


def _stratified_typicality(
    embeddings: np.ndarray, batch_size: int, strata: np.ndarray | None, rng
) -> np.ndarray:
    """Each stratum's share (as `stratified`), taken as the densest item of each k-means
    cluster inside the stratum: covers every source and, within it, every kind of item,
    typical ones before outliers."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = x.shape[0]
    if strata is None:
        strata = np.zeros(n, dtype=np.int64)
    group_of, alloc = _allocation(strata, n, batch_size, rng)
    picks = []
    for g in range(len(alloc)):
        members = np.flatnonzero(group_of == g)
        if alloc[g] == 0:
            continue
        if alloc[g] >= members.shape[0]:
            picks.append(members)
            continue
        picks.append(members[_cluster_pick(x[members], int(alloc[g]), "typicality", rng)])
    chosen = np.concatenate(picks).astype(np.int64) if picks else np.empty(0, np.int64)
    return rng.permutation(_top_up(chosen, n, batch_size, rng))


def typicality(embeddings: np.ndarray, k: int = 20) -> np.ndarray:
    """Inverse mean distance to the ``k`` nearest neighbours (higher = denser region)."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = x.shape[0]
    if n <= 1:
        return np.ones(n)
    k = min(k, n - 1)
    sq = np.einsum("ij,ij->i", x, x)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    np.fill_diagonal(d, np.inf)
    knn = np.partition(d, k - 1, axis=1)[:, :k]
    return 1.0 / (knn.mean(axis=1) + 1e-12)


def _cluster_pick(
    embeddings: np.ndarray, batch_size: int, method: str, rng: np.random.Generator
) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    centroids, labels = kmeans(x, batch_size, rng=rng)
    if method == "kmeans":
        owner, _ = nearest_center(centroids, x)
        chosen = list(dict.fromkeys(owner.tolist()))
    else:  # typicality: the densest member of each cluster (TypiClust, Hacohen et al. 2022)
        chosen = []
        for c in range(centroids.shape[0]):
            members = np.flatnonzero(labels == c)
            if members.shape[0] == 0:
                continue
            if members.shape[0] > _TYPICALITY_SAMPLE:
                members = rng.choice(members, size=_TYPICALITY_SAMPLE, replace=False)
            chosen.append(int(members[np.argmax(typicality(x[members]))]))
    if len(chosen) < batch_size:  # duplicate owners or empty clusters: top up at random
        rest = np.setdiff1d(np.arange(x.shape[0]), chosen)
        chosen += rng.choice(rest, size=batch_size - len(chosen), replace=False).tolist()
    return np.asarray(chosen[:batch_size], dtype=np.int64)


def cold_start(
    n: int,
    batch_size: int,
    *,
    embeddings: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    method: str = "stratified",
    seed: int = 0,
) -> np.ndarray:
    """Positions (of ``n`` items) for the first labeling batch.

    ``stratified``: random within metadata ``strata`` (one label per item, e.g. source),
    proportional but with every stratum represented; plain random without strata.
    ``kmeans``: the item nearest each of ``batch_size`` k-means centroids of ``embeddings``.
    ``typicality``: the densest item of each k-means cluster, which avoids the outliers
    that pure coverage would pick first. ``stratified_typicality``: each stratum's share of
    ``stratified``, taken by ``typicality`` inside the stratum. Deterministic by ``seed``.
    """
    if method not in COLD_START_METHODS:
        raise ValueError(f"unknown cold-start method {method!r}; use one of {COLD_START_METHODS}")
    batch_size = min(int(batch_size), int(n))
    rng = np.random.default_rng(seed)
    if batch_size <= 0:
        return np.empty(0, dtype=np.int64)
    if method == "stratified":
        return _stratified(n, batch_size, strata, rng)
    if embeddings is None:
        raise ValueError(f"cold start {method!r} needs embeddings")
    if np.asarray(embeddings).shape[0] != n:
        raise ValueError(f"embeddings must have {n} rows")
    if method == "stratified_typicality":
        return _stratified_typicality(embeddings, batch_size, strata, rng)
    return _cluster_pick(embeddings, batch_size, method, rng)

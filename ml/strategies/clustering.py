"""Distance machinery shared by the diversity strategies and cold start.

Everything works on squared Euclidean distances through ``|x|^2 + |c|^2 - 2 x.c`` so that
one update is a single matrix-vector product over the pool (BLAS), never an ``(n, d)``
temporary; blocks of centers are processed in chunks sized to keep memory bounded.
"""

from __future__ import annotations

import numpy as np

# Upper bound on the elements of one (pool x centers) distance block (~256 MB of float32).
_BLOCK_ELEMENTS = 64 * 1024 * 1024


def as_float_matrix(x: np.ndarray) -> np.ndarray:
    """C-contiguous float32 or float64 copy-free view where possible."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    return np.ascontiguousarray(x)


def min_sq_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared distance from every point to its nearest center, chunked over centers."""
    points = as_float_matrix(points)
    centers = as_float_matrix(centers).astype(points.dtype, copy=False)
    n = points.shape[0]
    point_sq = np.einsum("ij,ij->i", points, points)
    best = np.full(n, np.inf, dtype=np.float64)
    chunk = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, centers.shape[0], chunk):
        block = centers[start : start + chunk]
        block_sq = np.einsum("ij,ij->i", block, block)
        d = point_sq[:, None] + block_sq[None, :] - 2.0 * (points @ block.T)
        np.minimum(best, d.min(axis=1), out=best)
    return np.maximum(best, 0.0)


def nearest_center(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest center and the squared distance to it, chunked over points."""
    points = as_float_matrix(points)
    centers = as_float_matrix(centers).astype(points.dtype, copy=False)
    n, m = points.shape[0], centers.shape[0]
    center_sq = np.einsum("ij,ij->i", centers, centers)
    labels = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float64)
    chunk = max(1, _BLOCK_ELEMENTS // max(m, 1))
    for start in range(0, n, chunk):
        block = points[start : start + chunk]
        block_sq = np.einsum("ij,ij->i", block, block)
        d = block_sq[:, None] + center_sq[None, :] - 2.0 * (block @ centers.T)
        labels[start : start + chunk] = d.argmin(axis=1)
        dist[start : start + chunk] = np.maximum(
            d[np.arange(d.shape[0]), labels[start : start + chunk]], 0
        )
    return labels, dist


def k_center_greedy(
    embeddings: np.ndarray,
    batch_size: int,
    *,
    centers: np.ndarray | None = None,
    rng: np.random.Generator,
    block: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center (core-set) selection.

    Repeatedly takes the point farthest from everything chosen or already labeled
    (``centers``), so the batch covers the embedding space. Returns the chosen positions
    and each one's distance to its nearest center at the moment it was picked. Without
    ``centers`` the first pick is random (seeded) and scored by its distance to the mean.

    The greedy order is exact, but distances are computed ahead for the ``block`` points
    currently farthest out, with one matrix product over the pool: the next pick is almost
    always one of them, so the pool is read once per ``block`` picks instead of once per
    pick (the step that bounds speed on a CPU is memory traffic, not arithmetic).
    """
    x = as_float_matrix(embeddings).astype(np.float32, copy=False)
    n = x.shape[0]
    batch_size = min(batch_size, n)
    sq = np.einsum("ij,ij->i", x, x)
    chosen = np.empty(batch_size, dtype=np.int64)
    scores = np.empty(batch_size, dtype=np.float64)
    if centers is not None and len(centers):
        min_d = min_sq_distances(x, centers).astype(np.float32)
        first = None
    else:
        min_d = np.full(n, np.inf, dtype=np.float32)
        first = int(rng.integers(n))
    rows: dict[int, int] = {}
    dots = np.empty((0, n), dtype=np.float32)
    row_d = np.empty(n, dtype=np.float32)
    for t in range(batch_size):
        if t == 0 and first is not None:
            i = first
            scores[t] = float(np.linalg.norm(x[i] - x.mean(axis=0)))
        else:
            i = int(np.argmax(min_d))
            scores[t] = float(np.sqrt(max(float(min_d[i]), 0.0)))
        if i not in rows:
            ahead = top_k_positions(min_d, block)
            if i not in ahead:
                ahead = np.concatenate([[i], ahead[:-1]])
            dots = x[ahead] @ x.T  # (block, n): one pass over the pool for many picks
            rows = {int(c): r for r, c in enumerate(ahead)}
        chosen[t] = i
        # Squared distances from the new center to the whole pool, from the cached dots.
        np.multiply(dots[rows[i]], -2.0, out=row_d)
        row_d += sq
        row_d += sq[i]
        np.minimum(min_d, row_d, out=min_d)
        min_d[i] = -1.0  # never picked twice
    return chosen, scores


def top_k_positions(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest values (unordered), in linear time."""
    k = min(k, values.shape[0])
    if k == values.shape[0]:
        return np.arange(k)
    return np.argpartition(values, values.shape[0] - k)[-k:]


def kmeans_pp_init(
    points: np.ndarray,
    k: int,
    *,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """k-means++ seeding (D^2 sampling); returns the positions of the ``k`` seeds."""
    x = as_float_matrix(points)
    n = x.shape[0]
    k = min(k, n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x).astype(np.float64)
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.choice(n, p=w / w.sum()) if w.sum() > 0 else rng.integers(n)
    min_d = np.maximum(sq + sq[chosen[0]] - 2.0 * (x @ x[chosen[0]]), 0.0)
    for t in range(1, k):
        p = min_d * w
        p[chosen[:t]] = 0.0
        total = p.sum()
        if total <= 0:  # all remaining points coincide with a seed
            remaining = np.setdiff1d(np.arange(n), chosen[:t])
            chosen[t] = rng.choice(remaining)
        else:
            chosen[t] = rng.choice(n, p=p / total)
        d = np.maximum(sq + sq[chosen[t]] - 2.0 * (x @ x[chosen[t]]), 0.0)
        np.minimum(min_d, d, out=min_d)
    return chosen


def kmeans(
    points: np.ndarray,
    k: int,
    *,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
    iterations: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Lloyd's k-means from k-means++ seeds; returns ``(centroids, labels)``."""
    x = as_float_matrix(points).astype(np.float64)
    n = x.shape[0]
    k = min(k, n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    centroids = x[kmeans_pp_init(x, k, rng=rng, weights=weights)].copy()
    labels = np.full(n, -1, dtype=np.int64)
    weighted = x if weights is None else x * w[:, None]
    for _ in range(iterations):
        new_labels, _ = nearest_center(x, centroids)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        mass = np.bincount(labels, weights=w, minlength=k)
        sums = np.stack(
            [np.bincount(labels, weights=weighted[:, j], minlength=k) for j in range(x.shape[1])],
            axis=1,
        )
        filled = mass > 0
        centroids[filled] = sums[filled] / mass[filled, None]
    return centroids, labels

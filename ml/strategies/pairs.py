"""Which pairs of images are worth an expert's "same or different?".

Random pairs are nearly all easy "different" pairs (with 100 people, 99 in 100 random pairs
show two of them), so pairs are mined from the model's embedding of single images instead:
each image's nearest neighbours (where the missed "same" pairs and the confusable
look-alikes are) and its nearest images in *other* predicted clusters (where the model's
split between identities may be wrong); pairs whose answer the labels imply already by
transitivity (:func:`known_pairs`) are left out. Among the candidates, the ones whose
calibrated ``p(same)`` sits nearest 0.5, i.e. whose distance sits near the threshold
(plus the spread of MC-dropout distances when given), go first, and a cap on how often one
image may appear keeps a single odd photo from filling the batch. Arrays in, pair indices
out, deterministic by seed; :func:`random_pairs` is the baseline.

:class:`PairUncertaintyStrategy` serves pool items that are pairs already (the platform's
``pair_verification`` items) through the ordinary :func:`ml.strategies.select_batch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.strategies.base import Strategy
from ml.strategies.clustering import kmeans

PAIR_VERIFICATION = "pair_verification"

# Why a candidate pair was mined, in PairSelection.reasons.
NEIGHBOUR = "nearest neighbour"
ACROSS_CLUSTERS = "nearest in another cluster"
RANDOM = "random pair"
# Ways select_pairs chooses among candidates ("random" ignores them).
PAIR_STRATEGIES = ("mixed", "uncertain", "likely_same", "random")


def canonical(pairs: np.ndarray) -> np.ndarray:
    """Pairs ``(m, 2)`` with the smaller image index first (a pair has no order)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return np.sort(pairs, axis=1)


def _keys(pairs: np.ndarray, n: int) -> np.ndarray:
    pairs = canonical(pairs)
    return pairs[:, 0] * n + pairs[:, 1]


def random_pairs(
    n_images: int, k: int, *, seed: int = 0, exclude: np.ndarray | None = None
) -> np.ndarray:
    """``k`` distinct random pairs ``(k, 2)`` of different images among ``n_images``, none
    of them in ``exclude`` (pairs already labeled); fewer when not that many are left."""
    if n_images < 2:
        return np.empty((0, 2), np.int64)
    rng = np.random.default_rng([seed, 23])
    taken = (
        set(_keys(exclude, n_images).tolist()) if exclude is not None and len(exclude) else set()
    )
    total = n_images * (n_images - 1) // 2
    k = min(int(k), total - len(taken))
    chosen: list[tuple[int, int]] = []
    while len(chosen) < k:
        a = rng.integers(0, n_images, 2 * (k - len(chosen)) + 8)
        b = rng.integers(0, n_images, a.shape[0])
        for i, j in zip(a.tolist(), b.tolist(), strict=True):
            if i == j:
                continue
            key = min(i, j) * n_images + max(i, j)
            if key not in taken:
                taken.add(key)
                chosen.append((min(i, j), max(i, j)))
                if len(chosen) == k:
                    break
    return np.array(chosen, dtype=np.int64).reshape(-1, 2)


def cosine_distances(embeddings: np.ndarray) -> np.ndarray:
    """``(n, n)`` cosine distances ``1 - cos`` of the rows (normalised here)."""
    e = np.asarray(embeddings, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - e @ e.T, 0.0, 2.0)


def mine_candidate_pairs(
    embeddings: np.ndarray,
    *,
    neighbours: int = 5,
    across: int = 2,
    clusters: np.ndarray | None = None,
    n_clusters: int | None = None,
    exclude: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs from image embeddings ``(n, d)``: ``(pairs (m, 2), distances (m,),
    reasons (m,))``.

    Each image contributes its ``neighbours`` nearest images and its ``across`` nearest
    images in other clusters; ``clusters`` are predicted identities (per image) when known,
    else k-means on the embeddings with ``n_clusters`` (default about ``sqrt(n)``). Pairs in
    ``exclude`` (already labeled) are left out; duplicates are kept once, with the first
    reason found (a neighbour first).
    """
    e = np.asarray(embeddings, dtype=np.float64)
    n = e.shape[0]
    if n < 2:
        return np.empty((0, 2), np.int64), np.empty(0), np.empty(0, dtype=object)
    d = cosine_distances(e)
    np.fill_diagonal(d, np.inf)
    if exclude is not None and len(exclude):
        ex = canonical(exclude)
        d[ex[:, 0], ex[:, 1]] = d[ex[:, 1], ex[:, 0]] = np.inf
    if clusters is None:
        k = n_clusters or max(2, int(round(np.sqrt(n))))
        _, clusters = kmeans(e, min(k, n), rng=np.random.default_rng([seed, 29]))
    clusters = np.asarray(clusters)
    rows, reasons = [], []
    near = np.argsort(d, axis=1, kind="stable")[:, : min(neighbours, n - 1)]
    rows.append(np.stack([np.repeat(np.arange(n), near.shape[1]), near.ravel()], 1))
    reasons.append(np.full(near.size, NEIGHBOUR, dtype=object))
    if across > 0:
        other = np.where(clusters[None, :] != clusters[:, None], d, np.inf)
        cross = np.argsort(other, axis=1, kind="stable")[:, : min(across, n - 1)]
        rows.append(np.stack([np.repeat(np.arange(n), cross.shape[1]), cross.ravel()], 1))
        reasons.append(np.full(cross.size, ACROSS_CLUSTERS, dtype=object))
    pairs = canonical(np.concatenate(rows))
    reason = np.concatenate(reasons)
    distance = d[pairs[:, 0], pairs[:, 1]]
    keep = np.isfinite(distance)
    pairs, reason, distance = pairs[keep], reason[keep], distance[keep]
    _, first = np.unique(_keys(pairs, n), return_index=True)
    first = np.sort(first)
    return pairs[first], distance[first], reason[first]


def p_same(distance: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """``sigmoid(a + b * distance)`` for ``calibration = (a, b)``."""
    a, b = calibration
    return 1.0 / (1.0 + np.exp(-(a + b * np.asarray(distance, dtype=np.float64))))


def pair_uncertainty(p: np.ndarray, p_draws: np.ndarray | None = None) -> np.ndarray:
    """How unsure the model is of each pair: ``1 - 2 |p - 0.5|`` (1 at the threshold, 0 when
    sure), plus the standard deviation of ``p`` over MC-dropout draws ``p_draws (m, T)``."""
    score = 1.0 - 2.0 * np.abs(np.asarray(p, dtype=np.float64) - 0.5)
    if p_draws is not None:
        score = score + np.asarray(p_draws, dtype=np.float64).std(axis=1)
    return score


def select_diverse(
    pairs: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    max_per_image: int = 1,
    seed: int = 0,
    skip: np.ndarray | None = None,
    in_batch: np.ndarray | None = None,
) -> np.ndarray:
    """Positions of up to ``k`` pairs, highest score first, each image in at most
    ``max_per_image`` of them; the cap is raised only when it cannot fill the batch.
    ``skip`` are positions not to choose, ``in_batch`` images the batch holds already
    (picked by another criterion), which count toward the cap. Ties are broken at random
    by ``seed``."""
    pairs = canonical(pairs)
    m = len(pairs)
    taken = np.zeros(m, bool)
    if skip is not None:
        taken[np.asarray(skip, dtype=np.int64)] = True
    k = min(int(k), int((~taken).sum()))
    if k <= 0:
        return np.empty(0, np.int64)
    tiebreak = np.random.default_rng([seed, 31]).random(m)
    order = np.lexsort((tiebreak, -np.asarray(scores, dtype=np.float64)))
    chosen: list[int] = []
    uses: dict[int, int] = {}
    for image in np.asarray(in_batch if in_batch is not None else [], dtype=np.int64).tolist():
        uses[image] = uses.get(image, 0) + 1
    cap = max(1, int(max_per_image))
    while len(chosen) < k:
        for i in order:
            if taken[i]:
                continue
            a, b = pairs[i]
            if uses.get(a, 0) < cap and uses.get(b, 0) < cap:
                chosen.append(int(i))
                taken[i] = True
                uses[a] = uses.get(a, 0) + 1
                uses[b] = uses.get(b, 0) + 1
                if len(chosen) == k:
                    break
        cap += 1
    return np.array(chosen, dtype=np.int64)


@dataclass
class PairSelection:
    """Pairs chosen for labeling, most wanted first, with why: each pair's ``distance``,
    ``p_same``, ``score`` (by the criterion that chose it) and ``reason`` (how it was mined
    and chosen), and the ``threshold``
    distance at which ``p(same) = 0.5``."""

    pairs: np.ndarray
    scores: np.ndarray
    distances: np.ndarray
    p_same: np.ndarray
    reasons: np.ndarray
    threshold: float | None

    def __len__(self) -> int:
        return int(self.pairs.shape[0])


def select_pairs(
    embeddings: np.ndarray,
    k: int,
    *,
    calibration: tuple[float, float],
    strategy: str = "mixed",
    same_share: float = 0.5,
    exclude: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    mc_embeddings: np.ndarray | None = None,
    neighbours: int = 5,
    across: int = 2,
    max_per_image: int = 1,
    seed: int = 0,
    labels: np.ndarray | None = None,
) -> PairSelection:
    """``k`` new pairs of images to label, from image embeddings ``(n, d)``.

    Candidates are mined (:func:`mine_candidate_pairs`). ``strategy="uncertain"`` takes
    the most uncertain (:func:`pair_uncertainty`, with the spread over MC-dropout
    embeddings ``mc_embeddings (T, n, d)`` when given), ``"likely_same"`` the highest
    ``p(same)``, and ``"mixed"`` (the default) ``same_share`` of the batch the likely-same
    way and the rest the uncertain way, all under one per-image cap
    (:func:`select_diverse`); ``"random"`` draws random unlabeled pairs. Likely-same pairs
    matter because "same" is the rare answer: a model shown almost only "different" pairs
    learns little, and the uncertain pairs of a weak model are mostly different ones too.
    ``calibration`` is the model's ``(a, b)`` of ``p(same) = sigmoid(a + b * distance)``;
    ``exclude`` the pairs labeled already; with ``labels`` (their answers, true = same)
    every pair those answers imply is left out as well (:func:`known_pairs`): once the
    model's embedding is good, its nearest neighbours are mostly images of identities the
    labels have joined already, and an implied pair spends a label on a known answer.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    a, b = calibration
    threshold = float(-a / b) if b else None
    if labels is not None and exclude is not None and len(exclude):
        exclude = known_pairs(exclude, labels)
    if strategy == "random":
        pairs = random_pairs(e.shape[0], k, seed=seed, exclude=exclude)
        d = _pair_distances(e, pairs)
        p = p_same(d, calibration)
        return PairSelection(
            pairs, np.zeros(len(pairs)), d, p, np.full(len(pairs), RANDOM, dtype=object), threshold
        )
    if strategy not in PAIR_STRATEGIES:
        raise ValueError(
            f"unknown pair strategy {strategy!r}; choose one of {', '.join(PAIR_STRATEGIES)}"
        )
    pairs, d, reasons = mine_candidate_pairs(
        e, neighbours=neighbours, across=across, clusters=clusters, exclude=exclude, seed=seed
    )
    p = p_same(d, calibration)
    draws = None
    if mc_embeddings is not None:
        mc = np.asarray(mc_embeddings, dtype=np.float64)
        draws = np.stack([p_same(_pair_distances(m, pairs), calibration) for m in mc], axis=1)
    uncertainty = pair_uncertainty(p, draws)
    share = {"uncertain": 0.0, "likely_same": 1.0, "mixed": same_share}[strategy]
    n_same = int(round(share * min(k, len(pairs))))
    likely = select_diverse(pairs, p, n_same, max_per_image=max_per_image, seed=seed)
    unsure = select_diverse(
        pairs,
        uncertainty,
        k - len(likely),
        max_per_image=max_per_image,
        seed=seed,
        skip=likely,
        in_batch=pairs[likely].ravel(),
    )
    picked = np.concatenate([likely, unsure])
    # Each pick keeps the score it was chosen by, and says which criterion that was.
    scores = np.zeros(len(pairs))
    scores[likely], scores[unsure] = p[likely], uncertainty[unsure]
    reasons = reasons.copy()
    reasons[likely] = [f"{r}, likely same" for r in reasons[likely]]
    reasons[unsure] = [f"{r}, near the threshold" for r in reasons[unsure]]
    if len(picked) < k:  # the candidates ran out: fill up with random pairs
        more = random_pairs(
            e.shape[0],
            k - len(picked),
            seed=seed,
            exclude=np.concatenate(
                [canonical(exclude) if exclude is not None else np.empty((0, 2), np.int64), pairs]
            ),
        )
        dm = _pair_distances(e, more)
        return PairSelection(
            np.concatenate([pairs[picked], more]),
            np.concatenate([scores[picked], np.zeros(len(more))]),
            np.concatenate([d[picked], dm]),
            np.concatenate([p[picked], p_same(dm, calibration)]),
            np.concatenate([reasons[picked], np.full(len(more), RANDOM, dtype=object)]),
            threshold,
        )
    return PairSelection(
        pairs[picked], scores[picked], d[picked], p[picked], reasons[picked], threshold
    )


def known_pairs(pairs: np.ndarray, same: np.ndarray) -> np.ndarray:
    """The labeled ``pairs`` ``(m, 2)`` and every pair their answers ``same`` ``(m,)``
    imply by transitivity (:func:`ml.pair_labels.implied_pairs`: images joined by "same"
    answers are one identity; a "different" answer parts two identities), canonical. Pass
    it as ``exclude`` where candidates are mined, so that no label is spent on an answer
    known already."""
    from ml.pair_labels import implied_pairs

    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if not len(pairs):
        return pairs
    return canonical(implied_pairs(pairs, np.asarray(same).astype(bool))[0])


def _pair_distances(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
    if len(pairs) == 0:
        return np.empty(0)
    return 1.0 - (e[pairs[:, 0]] * e[pairs[:, 1]]).sum(axis=1)


class PairUncertaintyStrategy(Strategy):
    """Pool items that are pairs: the most uncertain ``p(same)`` first (``probs`` as
    (different, same), plus the spread over ``mc_probs`` draws when given), with no image
    in more than ``max_per_image`` picks. An image is recognised in several pairs by its
    embedding: ``embeddings`` hold the two members' side by side, and one image embeds the
    same wherever it appears."""

    name = "pair_uncertainty"
    requires = ("probs",)
    task_types = (PAIR_VERIFICATION,)

    def __init__(self, max_per_image: int = 1) -> None:
        self.max_per_image = max_per_image

    def _members(self, inputs) -> np.ndarray:
        """``(n, 2)`` image numbers of the pool pairs' members (one number per image)."""
        if inputs.embeddings is None:
            return np.stack([np.arange(inputs.n), np.arange(inputs.n) + inputs.n], 1)
        half = inputs.embeddings.shape[1] // 2
        both = np.concatenate([inputs.embeddings[:, :half], inputs.embeddings[:, half:]])
        # Equal embeddings (to float rounding) are one image.
        _, image = np.unique(np.round(both.astype(np.float64), 4), axis=0, return_inverse=True)
        return np.stack([image[: inputs.n], image[inputs.n :]], 1)

    def _p_and_uncertainty(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        inputs.require("probs")
        p = inputs.probs[:, -1]
        draws = inputs.mc_probs[:, :, -1].T if inputs.mc_probs is not None else None
        return p, pair_uncertainty(p, draws)

    def _select(self, inputs, batch_size, rng):
        _, scores = self._p_and_uncertainty(inputs)
        members = self._members(inputs)
        picked = select_diverse(
            members,
            scores,
            batch_size,
            max_per_image=self.max_per_image,
            seed=int(rng.integers(2**31)),
        )
        return picked, scores[picked]


class PairMixedStrategy(PairUncertaintyStrategy):
    """The pool version of :func:`select_pairs`'s ``"mixed"``: ``same_share`` of the batch
    the pairs most likely the same (the rare answer, which a model shown almost only
    different pairs never learns), the rest the most uncertain ones, one image in at most
    ``max_per_image`` picks of the whole batch. Each pick's score is the one it was chosen
    by (p(same), or the uncertainty)."""

    name = "pair_mixed"

    def __init__(self, same_share: float = 0.5, max_per_image: int = 1) -> None:
        if not 0.0 <= same_share <= 1.0:
            raise ValueError("same_share must lie in [0, 1]")
        super().__init__(max_per_image=max_per_image)
        self.same_share = same_share

    def _select(self, inputs, batch_size, rng):
        p, uncertainty = self._p_and_uncertainty(inputs)
        members = self._members(inputs)
        seed = int(rng.integers(2**31))
        likely = select_diverse(
            members,
            p,
            int(round(self.same_share * batch_size)),
            max_per_image=self.max_per_image,
            seed=seed,
        )
        unsure = select_diverse(
            members,
            uncertainty,
            batch_size - len(likely),
            max_per_image=self.max_per_image,
            seed=seed,
            skip=likely,
            in_batch=members[likely].ravel(),
        )
        return np.concatenate([likely, unsure]), np.concatenate([p[likely], uncertainty[unsure]])

"""Suspect labels: where the given label disagrees with what the data says.

Confident learning (Northcutt, Jiang & Chuang, 2021) on out-of-fold probabilities: a class's
threshold is the model's average confidence in that class on the items labeled with it;
an item is *confidently* of class ``j`` when its probability of ``j`` reaches that threshold.
Items confidently of another class than their label are suspects, ranked by how strongly
the model prefers another class. Out-of-fold matters: a model scoring its own training
items has memorised their labels and will not contradict them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class LabelIssues:
    """Suspect items, most suspect first.

    ``scores`` lie in [0, 1]: ``(1 - margin) / 2`` where margin is the probability of the
    given label minus the best other class (0.5 = a tie, 1 = certain it is another class).
    ``confident_joint[i, j]`` counts items labeled ``i`` that are confidently ``j``.
    """

    indices: np.ndarray
    scores: np.ndarray
    given_labels: np.ndarray
    suggested_labels: np.ndarray
    thresholds: np.ndarray
    confident_joint: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def _check(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise ValueError(f"need labels (n,) and probs (n, k); got {labels.shape}, {probs.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must lie in [0, {probs.shape[1]})")
    return labels, probs


def per_class_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Mean predicted probability of each class over the items labeled with it.

    A class without labeled items gets ``inf``: nothing can be confidently of it.
    """
    labels, probs = _check(labels, probs)
    k = probs.shape[1]
    counts = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=probs[np.arange(labels.size), labels], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)


def find_label_issues(labels: np.ndarray, oof_probs: np.ndarray) -> LabelIssues:
    """Rank items whose given label is contradicted by out-of-fold probabilities."""
    labels, probs = _check(labels, oof_probs)
    n, k = probs.shape
    thresholds = per_class_thresholds(labels, probs)
    confident = probs >= thresholds[None, :]
    has_confident = confident.any(axis=1)
    # Among the classes an item is confidently in, the most probable one wins.
    masked = np.where(confident, probs, -np.inf)
    confident_label = np.where(has_confident, masked.argmax(axis=1), -1)

    joint = np.zeros((k, k), dtype=np.int64)
    hit = has_confident
    np.add.at(joint, (labels[hit], confident_label[hit]), 1)

    suspect = hit & (confident_label != labels)
    given_prob = probs[np.arange(n), labels]
    others = probs.copy()
    others[np.arange(n), labels] = -np.inf
    margin = given_prob - others.max(axis=1)
    suspicion = (1.0 - margin) / 2.0

    positions = np.flatnonzero(suspect)
    order = positions[np.lexsort((positions, -suspicion[positions]))]
    return LabelIssues(
        indices=order.astype(np.int64),
        scores=suspicion[order],
        given_labels=labels[order],
        suggested_labels=confident_label[order].astype(np.int64),
        thresholds=thresholds,
        confident_joint=joint,
    )


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of every item; each class is dealt round-robin over the folds."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.empty(labels.shape[0], dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        fold[members] = (np.arange(members.shape[0]) + offset) % n_folds
        offset += members.shape[0]  # spread small classes over different folds
    return fold


def out_of_fold_probs(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int | None = None,
    n_folds: int = 5,
    seed: int = 0,
    fit: Callable[[np.ndarray, np.ndarray], object] | None = None,
) -> np.ndarray:
    """Probabilities for every item from a model that never saw it (k-fold).

    ``fit(x, y)`` returns an object with ``predict_proba(x) -> (n, k)``; the default is the
    linear probe of :mod:`ml.baseline` on embeddings.
    """
    features = np.asarray(features)
    labels = np.asarray(labels, dtype=np.int64)
    k = num_classes or int(labels.max()) + 1
    if fit is None:
        from ml.baseline import fit_linear_probe

        def fit(x, y):
            return fit_linear_probe(x, y, num_classes=k, seed=seed)

    folds = stratified_folds(labels, n_folds, seed)
    probs = np.zeros((labels.shape[0], k), dtype=np.float64)
    for f in range(n_folds):
        test = folds == f
        if not test.any():
            continue
        model = fit(features[~test], labels[~test])
        p = np.asarray(model.predict_proba(features[test]), dtype=np.float64)
        probs[test, : p.shape[1]] = p
    return probs

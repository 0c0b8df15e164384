"""The acquisition interface: arrays in, indices and scores out.

A strategy never sees a database row or a model object. It receives what scoring produced
for the unlabeled pool (probabilities, embeddings, MC-dropout samples) plus a summary of
the labeled set, and answers with pool positions in priority order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


@dataclass
class AcquisitionInputs:
    """Everything a strategy may look at, for ``n`` pool items and ``k`` classes.

    ``probs`` is what classification gives; a task type without class probabilities per
    item gives ``item_scores`` instead (one of the two is required). The rest is optional
    and a strategy that needs a missing array raises ``ValueError`` naming it.
    ``item_scores`` has the items on its first axis and may keep extra axes (one score per
    box, per pair member): a strategy reduces them explicitly with :func:`reduce`.
    """

    probs: np.ndarray | None = None  # (n, k) predicted class probabilities of the pool
    embeddings: np.ndarray | None = None  # (n, d) penultimate features of the pool
    mc_probs: np.ndarray | None = None  # (T, n, k) MC-dropout probabilities
    labeled_embeddings: np.ndarray | None = None  # (m, d) features of labeled items
    labeled_class_counts: np.ndarray | None = None  # (k,) labels already collected
    class_targets: np.ndarray | None = None  # (k,) how many labels each class should reach
    item_scores: np.ndarray | None = None  # (n, ...) per-item scores, extra axes unreduced
    # What earlier batches' picks turned out to be (ml.strategies.adaptive.PickHistory).
    history: object | None = None
    # Labeled picks drawn at random over the project's life (the control slice and random
    # arms): how hard random picks have looked for a class nobody has labeled.
    random_labeled: int | None = None

    def __post_init__(self) -> None:
        if self.probs is None and self.item_scores is None:
            raise ValueError("AcquisitionInputs needs probs or item_scores")
        if self.item_scores is not None:
            self.item_scores = np.asarray(self.item_scores)
            if self.item_scores.ndim == 0:
                raise ValueError("item_scores must have the items on their first axis")
        if self.probs is not None:
            self.probs = np.asarray(self.probs)
            if self.probs.ndim != 2:
                raise ValueError(f"probs must be (n, k), got shape {self.probs.shape}")
        n = self.n
        if self.item_scores is not None and self.item_scores.shape[0] != n:
            raise ValueError(f"item_scores must have {n} items, got {self.item_scores.shape}")
        if self.embeddings is not None:
            self.embeddings = np.asarray(self.embeddings)
            if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n:
                raise ValueError(f"embeddings must be ({n}, d), got {self.embeddings.shape}")
        if self.mc_probs is not None:
            self.mc_probs = np.asarray(self.mc_probs)
            if (
                self.probs is None
                or self.mc_probs.ndim != 3
                or self.mc_probs.shape[1:] != self.probs.shape
            ):
                k = self.probs.shape[1] if self.probs is not None else "k"
                raise ValueError(f"mc_probs must be (T, {n}, {k}), got {self.mc_probs.shape}")

    @property
    def n(self) -> int:
        source = self.probs if self.probs is not None else self.item_scores
        return int(source.shape[0])

    @property
    def num_classes(self) -> int:
        """Classes of ``probs``; 0 for a task type that gives no class probabilities."""
        return int(self.probs.shape[1]) if self.probs is not None else 0

    def take(self, positions: np.ndarray) -> AcquisitionInputs:
        """The same inputs restricted to some pool positions (labeled-set fields are kept)."""
        pool_fields = {"probs", "embeddings", "item_scores"}
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and f.name in pool_fields:
                value = value[positions]
            elif value is not None and f.name == "mc_probs":
                value = value[:, positions]
            values[f.name] = value
        return AcquisitionInputs(**values)

    def require(self, *names: str) -> None:
        """Raise a clear error when an array a strategy depends on was not provided."""
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise ValueError(f"this strategy needs {', '.join(missing)} in AcquisitionInputs")


REDUCTIONS = ("sum", "mean", "max")


def reduce(scores: np.ndarray, axis: int | tuple[int, ...] | None = None, how: str = "sum"):
    """Per-item scores with extra axes (per box, per pair member) reduced to one per item.

    ``axis`` names the axes to fold; by default every axis after the first (the items).
    ``how`` is ``sum``, ``mean`` or ``max``, as baal's ``reduction``: which one fits is the
    task type's decision (an image's uncertainty is the sum over its boxes, or its most
    doubtful box), so it is always said, never implied. NaN entries (padding of items with
    fewer boxes) are ignored.
    """
    if how not in REDUCTIONS:
        raise ValueError(f"unknown reduction {how!r}; choose one of {', '.join(REDUCTIONS)}")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 0:
        raise ValueError("scores must have the items on their first axis")
    if axis is None:
        axis = tuple(range(1, scores.ndim))
    elif isinstance(axis, int):
        axis = (axis,)
    axis = tuple(a % scores.ndim for a in axis)
    if 0 in axis:
        raise ValueError("the first axis holds the items and cannot be reduced")
    if not axis:
        return scores
    missing = np.isnan(scores)
    present = np.where(missing, 0.0, scores)
    if how == "sum":
        out = present.sum(axis=axis)
    elif how == "mean":
        out = present.sum(axis=axis) / np.maximum((~missing).sum(axis=axis), 1)
    else:
        out = np.where(missing, -np.inf, scores).max(axis=axis)
    return np.where(missing.all(axis=axis), 0.0, out)


@dataclass
class Selection:
    """Pool positions chosen for labeling, most valuable first.

    ``scores`` are the strategy's own reasons (uncertainty, distance, ...), higher meaning
    more wanted; items of the random control slice carry ``is_control=True`` and score 0.
    ``arms`` names, per pick, the strategy that chose it (a mix such as ``adaptive`` has
    several; control picks are ``"control"``), ``note`` says why the mix was chosen and ``mix``
    holds its figures.
    """

    indices: np.ndarray
    scores: np.ndarray
    is_control: np.ndarray = field(default=None)  # type: ignore[assignment]
    strategy: str = ""
    arms: np.ndarray = field(default=None)  # type: ignore[assignment]
    note: str = ""
    # A mix's figures: {"shares": {arm: share}, "relative_yield": {arm: x or None}}.
    mix: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.is_control is None:
            self.is_control = np.zeros(self.indices.shape[0], dtype=bool)
        self.is_control = np.asarray(self.is_control, dtype=bool)
        if self.arms is None:
            self.arms = np.where(self.is_control, "control", self.strategy).astype(object)
        self.arms = np.asarray(self.arms, dtype=object)
        if not (
            self.indices.shape == self.scores.shape == self.is_control.shape == self.arms.shape
        ):
            raise ValueError("indices, scores, is_control and arms must have the same length")

    def __len__(self) -> int:
        return int(self.indices.shape[0])


# The task type every strategy serves unless it says otherwise (`Strategy.task_types`).
CLASSIFICATION = "image_classification"
# In `Strategy.task_types`: the strategy works for any task type (it needs no model output).
ANY_TASK_TYPE = "*"


class Strategy:
    """Base class: subclasses set ``name`` and implement :meth:`_select`.

    ``requires`` names the AcquisitionInputs arrays the strategy cannot work without (so a
    caller computes only what is needed, e.g. MC draws for BALD); ``task_types`` the task
    types whose inputs it understands (``ANY_TASK_TYPE`` for all); ``reads_history``
    whether it reads ``history`` and ``random_labeled`` (a caller skips reading them back
    from earlier batches otherwise).
    """

    name: str = ""
    requires: tuple[str, ...] = ()
    task_types: tuple[str, ...] = (CLASSIFICATION,)
    reads_history: bool = False

    def supports(self, task_type: str) -> bool:
        """Whether the strategy can choose among items of this task type."""
        return ANY_TASK_TYPE in self.task_types or task_type in self.task_types

    def select(self, inputs: AcquisitionInputs, batch_size: int, *, seed: int = 0) -> Selection:
        """Choose up to ``batch_size`` pool positions (fewer only when the pool is smaller)."""
        if batch_size < 0:
            raise ValueError("batch_size must be >= 0")
        batch_size = min(int(batch_size), inputs.n)
        if batch_size == 0:
            return Selection(np.empty(0, np.int64), np.empty(0), strategy=self.name)
        indices, scores = self._select(inputs, batch_size, np.random.default_rng(seed))
        return Selection(indices, scores, strategy=self.name)

    def _select(
        self, inputs: AcquisitionInputs, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest scores, largest first, in O(n + k log k).

    Ties are broken by position so that the result does not depend on the sort algorithm.
    """
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    # Partition on the scores as they are: negating a million of them costs a full pass.
    part = np.argpartition(scores, n - k)[n - k :] if k < n else np.arange(n)
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)

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

    ``probs`` is required; the rest is optional and a strategy that needs a missing array
    raises ``ValueError`` naming it.
    """

    probs: np.ndarray  # (n, k) predicted class probabilities of the pool
    embeddings: np.ndarray | None = None  # (n, d) penultimate features of the pool
    mc_probs: np.ndarray | None = None  # (T, n, k) MC-dropout probabilities
    labeled_embeddings: np.ndarray | None = None  # (m, d) features of labeled items
    labeled_class_counts: np.ndarray | None = None  # (k,) labels already collected
    class_targets: np.ndarray | None = None  # (k,) how many labels each class should reach

    def __post_init__(self) -> None:
        self.probs = np.asarray(self.probs)
        if self.probs.ndim != 2:
            raise ValueError(f"probs must be (n, k), got shape {self.probs.shape}")
        n = self.probs.shape[0]
        if self.embeddings is not None:
            self.embeddings = np.asarray(self.embeddings)
            if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n:
                raise ValueError(f"embeddings must be ({n}, d), got {self.embeddings.shape}")
        if self.mc_probs is not None:
            self.mc_probs = np.asarray(self.mc_probs)
            if self.mc_probs.ndim != 3 or self.mc_probs.shape[1:] != self.probs.shape:
                raise ValueError(
                    f"mc_probs must be (T, {n}, {self.probs.shape[1]}), got {self.mc_probs.shape}"
                )

    @property
    def n(self) -> int:
        return int(self.probs.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[1])

    def take(self, positions: np.ndarray) -> AcquisitionInputs:
        """The same inputs restricted to some pool positions (labeled-set fields are kept)."""
        pool_fields = {"probs", "embeddings"}
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


@dataclass
class Selection:
    """Pool positions chosen for labeling, most valuable first.

    ``scores`` are the strategy's own reasons (uncertainty, distance, ...), higher meaning
    more wanted; items of the random control slice carry ``is_control=True`` and score 0.
    """

    indices: np.ndarray
    scores: np.ndarray
    is_control: np.ndarray = field(default=None)  # type: ignore[assignment]
    strategy: str = ""

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.is_control is None:
            self.is_control = np.zeros(self.indices.shape[0], dtype=bool)
        self.is_control = np.asarray(self.is_control, dtype=bool)
        if not (self.indices.shape == self.scores.shape == self.is_control.shape):
            raise ValueError("indices, scores and is_control must have the same length")

    def __len__(self) -> int:
        return int(self.indices.shape[0])


class Strategy:
    """Base class: subclasses set ``name`` and implement :meth:`_select`."""

    name: str = ""

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

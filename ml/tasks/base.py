"""What a task type is to the learning library: one spec per kind of work.

A spec answers, for its task type, the five questions training, scoring and selection ask:
how to build a model, how to train it, what it predicts about items (with MC-dropout draws
when a strategy asks for them), how good it is on a labeled set (one headline metric, with
per-class detail), and which arrays the acquisition strategies see. Everything around it
(runs, chunks, artifacts, selection rounds) is shared and asks the registry
(:mod:`ml.tasks`) by name.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.artifacts import ItemArrays
from ml.strategies.base import AcquisitionInputs


@dataclass
class Predictions:
    """What a model says about ``n`` items, in their order.

    Any of: ``probs (n, k)`` class probabilities, ``scores (n, ...)`` per-item scores (extra
    axes for boxes or pair members, reduced by the strategy), ``embeddings (n, d)``,
    ``mc_probs (T, n, k)`` MC-dropout draws, and ``extras``: task-specific arrays whose first
    axis is the items (boxes, pair distances). The same fields as :class:`ItemArrays`, which
    :meth:`arrays` makes of them once the item ids are known.
    """

    probs: np.ndarray | None = None
    scores: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    mc_probs: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self, item_ids: np.ndarray, **changes: Any) -> ItemArrays:
        """The predictions as an artifact about ``item_ids``; ``changes`` replace fields
        (e.g. calibrated ``probs`` beside the model's own ``raw_probs``)."""
        fields = {
            "scores": self.scores,
            "probs": self.probs,
            "embeddings": self.embeddings,
            "mc_probs": self.mc_probs,
            "extras": dict(self.extras),
        }
        fields.update(changes)
        return ItemArrays(item_ids=np.asarray(item_ids, dtype=np.int64), **fields)


@dataclass
class Evaluation:
    """How good predictions are on a labeled set.

    ``metric`` names the headline figure (``balanced_accuracy``, ``map50``, ``roc_auc``...)
    and ``value`` is it; ``per_class`` has one dict per class (``class`` and that task
    type's figures); ``details`` holds every figure, JSON-ready, as model versions keep them.
    """

    metric: str
    value: float
    per_class: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)


# progress(step, total_steps, loss) after each optimisation step.
ProgressCallback = Callable[[int, int, float], None]


class TaskSpec:
    """One task type, pure: subclasses set ``name`` and ``headline_metric`` and implement
    the methods. ``name`` is the key in the registry, the same key the platform uses.

    Models are whatever the spec builds; the shared code only passes them back to the spec
    (train, predict, weights). ``train`` returns an object with at least ``model``,
    ``device``, ``seconds``, ``history`` and ``class_weights`` (``ml.training.TrainResult``).
    """

    name: str = ""
    headline_metric: str = ""

    def build_model(self, kind: str, *, num_classes: int, image_size: int, seed=None, **options):
        """A fresh model of ``kind`` for ``num_classes`` classes and square images."""
        raise NotImplementedError

    def train(self, model, x, y, *, val_x=None, val_y=None, config=None, progress=None):
        """Trains ``model`` on inputs ``x`` and targets ``y`` (holdout ``val_x``/``val_y``
        for early stopping where the spec uses it); returns a TrainResult-like record."""
        raise NotImplementedError

    def predict(self, model, x, *, batch_size: int = 256, mc_samples: int = 0, seed: int = 0):
        """:class:`Predictions` for every item of ``x``; ``mc_samples=T`` adds T MC draws."""
        raise NotImplementedError

    def evaluate(self, y_true, predictions: Predictions, *, class_names: list[str]) -> Evaluation:
        """The headline metric and its detail of ``predictions`` against ``y_true``."""
        raise NotImplementedError

    def to_acquisition_inputs(self, scored: ItemArrays, **labeled: Any) -> AcquisitionInputs:
        """What the strategies see of scored pool items; ``labeled`` carries the labeled-set
        summaries (``labeled_embeddings``, ``labeled_class_counts``, ``class_targets``).

        By default the artifact's probabilities, MC draws, embeddings (none when the artifact
        holds none or empty ones) and per-item scores, as they are."""
        has_embeddings = scored.embeddings is not None and np.asarray(scored.embeddings).size
        return AcquisitionInputs(
            probs=scored.probs,
            embeddings=scored.embeddings if has_embeddings else None,
            mc_probs=scored.mc_probs,
            item_scores=scored.scores,
            **labeled,
        )

    def weights_bytes(self, model, *, class_names: list[str]) -> bytes:
        """The trained model as bytes to store; :meth:`load_weights` reads them back."""
        import torch

        buffer = io.BytesIO()
        torch.save({"state_dict": model.state_dict(), "classes": class_names}, buffer)
        return buffer.getvalue()

    def load_weights(self, model, content: bytes):
        """``model`` (as built by :meth:`build_model`) with the stored weights; returned."""
        import torch

        state = torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
        model.load_state_dict(state["state_dict"])
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

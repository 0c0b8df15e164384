"""Loss shaping for imbalanced data: class weights and focal loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTING_METHODS = ("none", "inverse", "effective")


def class_weights(
    counts: np.ndarray, *, method: str = "inverse", beta: float = 0.999
) -> np.ndarray:
    """Per-class loss weights from label counts, normalised to mean 1.

    ``inverse``: proportional to ``1 / count``. ``effective``: the "effective number of
    samples" of Cui et al. (2019), proportional to ``(1 - beta) / (1 - beta**count)``, which
    weights rare classes up less aggressively than ``inverse`` as counts grow. ``none``: all
    ones. A class with no labels yet is treated as having one, so it gets the largest weight
    rather than an infinite one.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError("counts must be a non-empty one-dimensional array")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    if method == "none":
        return np.ones_like(counts)
    safe = np.maximum(counts, 1.0)
    if method == "inverse":
        raw = 1.0 / safe
    elif method == "effective":
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must lie in [0, 1), got {beta}")
        raw = (1.0 - beta) / (1.0 - np.power(beta, safe))
    else:
        raise ValueError(f"unknown weighting {method!r}; choose one of {WEIGHTING_METHODS}")
    return raw / raw.mean()


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017): cross-entropy scaled by ``(1 - p_true) ** gamma``.

    Easy, confidently right examples contribute little, so the abundant class stops
    dominating the gradient. ``weight`` are per-class weights; with ``reduction="mean"`` the
    sum is divided by the summed weights of the targets, exactly like
    :class:`torch.nn.CrossEntropyLoss`, so ``gamma=0`` reproduces weighted cross-entropy.
    """

    def __init__(
        self,
        weight: torch.Tensor | np.ndarray | None = None,
        gamma: float = 2.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError("gamma must be non-negative")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"unknown reduction {reduction!r}")
        self.gamma = float(gamma)
        self.reduction = reduction
        self.register_buffer("weight", _to_weight_tensor(weight), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        loss = -((1.0 - log_p.exp()).clamp_min(0.0) ** self.gamma) * log_p
        w = self.weight[target] if self.weight is not None else torch.ones_like(loss)
        loss = loss * w
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / w.sum()


def _to_weight_tensor(weight: torch.Tensor | np.ndarray | None) -> torch.Tensor | None:
    if weight is None:
        return None
    return torch.as_tensor(np.asarray(weight, dtype=np.float32))


def make_loss(
    name: str,
    weights: torch.Tensor | np.ndarray | None = None,
    *,
    gamma: float = 2.0,
) -> nn.Module:
    """Build the training loss by name: ``"ce"`` (cross-entropy) or ``"focal"``."""
    if name == "ce":
        return nn.CrossEntropyLoss(weight=_to_weight_tensor(weights))
    if name == "focal":
        return FocalLoss(weight=weights, gamma=gamma)
    raise ValueError(f"unknown loss {name!r}; choose 'ce' or 'focal'")

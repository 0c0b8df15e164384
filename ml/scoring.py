"""Batched scoring of a pool: class probabilities, embeddings and optional MC-dropout samples.

One pass per batch yields both the embedding and the probabilities (``head(embed(x))``), so
scoring costs no more than a plain forward loop. The same code runs on CUDA and CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ml.device import pick_device
from ml.metrics import classification_metrics
from ml.models import enable_mc_dropout


@dataclass
class ScoreOutput:
    """Scores for ``n`` items: ``probs (n, k)``, ``embeddings (n, d)`` and, when MC-dropout
    sampling was asked for, ``mc_probs (T, n, k)``; all float32 numpy arrays."""

    probs: np.ndarray
    embeddings: np.ndarray
    mc_probs: np.ndarray | None = None


def _batches(
    x: torch.Tensor | Dataset, batch_size: int, device: torch.device, num_workers: int
) -> Iterator[torch.Tensor]:
    if torch.is_tensor(x):
        for start in range(0, len(x), batch_size):
            yield x[start : start + batch_size].to(device, non_blocking=True)
        return
    loader = DataLoader(
        x,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    for item in loader:
        xb = item[0] if isinstance(item, (tuple, list)) else item
        yield xb.to(device, non_blocking=True)


def _split_model(model: nn.Module) -> tuple[Callable, Callable | None]:
    """``(embed, head)`` when the model exposes them, else ``(forward, None)``."""
    embed, head = getattr(model, "embed", None), getattr(model, "head", None)
    if callable(embed) and isinstance(head, nn.Module):
        return embed, head
    return model, None


def _dropout_only_in_head(model: nn.Module, head: nn.Module | None) -> bool:
    """When every dropout layer sits in the head, MC samples only need to re-run the head."""
    if head is None:
        return False
    in_head = {id(m) for m in head.modules()}
    return all(
        id(m) in in_head for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)
    )


def score(
    model: nn.Module,
    x: torch.Tensor | Dataset,
    *,
    batch_size: int = 256,
    mc_samples: int = 0,
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
    seed: int = 0,
    num_workers: int = 0,
) -> ScoreOutput:
    """Score every item of ``x`` (a tensor ``(n, ...)`` or a dataset of ``(x, label)``).

    ``mc_samples=T > 0`` adds ``T`` MC-dropout draws per item (for BALD and friends),
    reproducible through ``seed``. When all dropout sits in the model's head (as in
    :class:`ml.models.SmallCNN`), the draws re-run only the head on the embedding, which
    gives the same distribution as ``T`` full passes at a fraction of the cost.
    ``progress(done, total)`` is called after each batch. The model's train/eval mode is
    restored afterwards.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    device = pick_device(device)
    total = len(x)
    was_training = model.training
    model.to(device).eval()
    embed, head = _split_model(model)
    head_only_mc = mc_samples > 0 and _dropout_only_in_head(model, head)
    probs = embeddings = mc_probs = None
    done = 0
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for xb in _batches(x, batch_size, device, num_workers):
                emb = embed(xb)
                logits = head(emb) if head is not None else emb
                p = torch.softmax(logits.float(), dim=1)
                n_b = len(p)
                if probs is None:
                    probs = np.empty((total, p.shape[1]), dtype=np.float32)
                    embeddings = np.empty((total, emb.flatten(1).shape[1]), dtype=np.float32)
                    if mc_samples > 0:
                        mc_probs = np.empty((mc_samples, total, p.shape[1]), dtype=np.float32)
                probs[done : done + n_b] = p.cpu().numpy()
                embeddings[done : done + n_b] = emb.flatten(1).float().cpu().numpy()
                if mc_samples > 0:
                    enable_mc_dropout(model)
                    if head_only_mc:
                        # One call over T stacked copies: dropout masks are drawn per element.
                        stacked = emb.unsqueeze(0).expand(mc_samples, *emb.shape)
                        mc_logits = head(stacked.reshape(-1, emb.shape[1]))
                    else:
                        mc_logits = torch.cat([model(xb) for _ in range(mc_samples)])
                    mc = torch.softmax(mc_logits.float(), dim=1).view(mc_samples, n_b, -1)
                    mc_probs[:, done : done + n_b] = mc.cpu().numpy()
                    model.eval()
                done += n_b
                if progress is not None:
                    progress(done, total)
    finally:
        model.train(was_training)
    if probs is None:
        raise ValueError("nothing to score: the input is empty")
    return ScoreOutput(probs=probs, embeddings=embeddings, mc_probs=mc_probs)


def evaluate(
    model: nn.Module,
    x: torch.Tensor | Dataset,
    y: np.ndarray | torch.Tensor,
    *,
    class_names: list[str] | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> dict:
    """Score ``x`` and return :func:`ml.metrics.classification_metrics` against labels ``y``."""
    y = y.cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
    probs = score(model, x, batch_size=batch_size, device=device).probs
    return classification_metrics(y, probs, class_names=class_names)

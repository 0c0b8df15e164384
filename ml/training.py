"""Imbalance-aware training with early stopping on a holdout, deterministic by seed.

Inputs are either tensors (``train_x`` of shape ``(n, ...)`` plus labels) or any
``torch.utils.data.Dataset`` returning ``(x, label)``, such as :class:`ml.data.ImageFolderDataset`.
The same code runs on CUDA and CPU; the device comes from :func:`ml.device.pick_device`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ml.device import pick_device
from ml.losses import class_weights as compute_class_weights
from ml.losses import make_loss
from ml.metrics import balanced_accuracy
from ml.scoring import score

ProgressCallback = Callable[[int, int, float], None]


@dataclass
class TrainConfig:
    """How to train. Defaults suit a small CNN on a few hundred to a few thousand images
    (batch 32 and lr 3e-3 learned rare defects better than batch 64 and lr 1e-3 on the
    synthetic inspection set).

    ``class_weighting`` re-weights the loss by class frequency; ``balanced_sampling`` draws
    every class equally often instead. Both fight imbalance, so using both at once
    over-corrects: pick one. ``early_stopping_patience`` counts epochs without a better
    holdout balanced accuracy (``None`` trains all epochs); with ``keep_best_epoch`` the best
    epoch's weights are kept, otherwise the last epoch's (the holdout then only watches).
    An epoch chosen on a holdout makes that holdout's figures optimistic: a caller that
    reports on the holdout it passes should keep the last epoch
    (benchmarks/holdout_honesty.py measures by how much).
    ``min_steps`` raises the number of epochs when the labeled set is small, so that a model
    trained from scratch on 100 labels still gets enough optimisation steps; early stopping
    waits for them too. ``max_steps`` ends training after that many steps, in the middle of
    an epoch if need be: fine-tuning a model that starts from trained weights
    (``min_steps == max_steps``) takes the same number of steps however many labels there are.
    ``augment`` is applied to each training batch when inputs are tensors (datasets carry
    their own augmentation).
    """

    epochs: int = 30
    min_steps: int = 0
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    loss: str = "ce"
    focal_gamma: float = 2.0
    class_weighting: str = "inverse"
    effective_beta: float = 0.999
    balanced_sampling: bool = False
    early_stopping_patience: int | None = 5
    keep_best_epoch: bool = True
    seed: int = 0
    device: str | None = None
    lr_schedule: str = "cosine"
    grad_clip: float | None = 5.0
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    num_classes: int | None = None
    num_workers: int = 0
    eval_batch_size: int = 256


@dataclass
class TrainResult:
    """What training produced: the model (best epoch's weights, eval mode) and its record."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    class_weights: np.ndarray | None = None
    device: str = "cpu"
    seconds: float = 0.0
    stopped_early: bool = False
    best_val_balanced_accuracy: float | None = None


def _labels(y, dataset: Dataset | None) -> np.ndarray:
    if y is None and dataset is not None:
        y = getattr(dataset, "targets", None)
        if y is None:
            y = [int(dataset[i][1]) for i in range(len(dataset))]
    if y is None:
        raise ValueError("labels are required for tensor inputs")
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y, dtype=np.int64)
    if (y < 0).any():
        raise ValueError("training and holdout items must all be labeled (found label < 0)")
    return y


def _epoch_batches(
    y: np.ndarray, config: TrainConfig, num_classes: int, generator: torch.Generator
) -> list[torch.Tensor]:
    n = len(y)
    if config.balanced_sampling:
        counts = np.bincount(y, minlength=num_classes).astype(np.float64)
        per_item = torch.as_tensor(1.0 / counts[y])
        order = torch.multinomial(per_item, n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    batches = list(torch.split(order, config.batch_size))
    # A batch of one breaks batch norm and gives a very noisy step: fold it into the previous.
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2] = torch.cat(batches[-2:])
        batches.pop()
    return batches


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed dropout/augmentation RNGs for this run only, restoring the caller's state after."""
    devices = [device.index or 0] if device.type == "cuda" else []
    cudnn = torch.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        cudnn.deterministic, cudnn.benchmark = True, False
        try:
            yield
        finally:
            cudnn.deterministic, cudnn.benchmark = saved


def _lr_factor(config: TrainConfig, step: int, total: int) -> float:
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))
    raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}; use 'cosine' or 'constant'")


def train_classifier(
    model: nn.Module,
    train_x: torch.Tensor | Dataset,
    train_y: np.ndarray | torch.Tensor | None = None,
    *,
    val_x: torch.Tensor | Dataset | None = None,
    val_y: np.ndarray | torch.Tensor | None = None,
    config: TrainConfig | None = None,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train ``model`` on labeled data, keeping the epoch with the best holdout score
    (``config.keep_best_epoch``, the default) or the last one.

    ``progress(step, total_steps, loss)`` is called after every optimisation step;
    ``total_steps`` is the planned number of steps (epochs, raised by ``min_steps`` and capped
    by ``max_steps``). When early stopping ends training before the plan, one more call
    reports the steps really run as the total (``step == total_steps``), so a progress bar
    ends full and the last call's total is always the number of steps run.
    The model trains from the weights it has: pass a trained model to fine-tune it.
    Two calls with the same inputs, initial weights and ``config.seed`` give the same model.
    """
    config = config or TrainConfig()
    started = time.perf_counter()
    device = pick_device(config.device)
    dataset = train_x if isinstance(train_x, Dataset) and not torch.is_tensor(train_x) else None
    y = _labels(train_y, dataset)
    if len(y) == 0:
        raise ValueError("cannot train on an empty set")
    if dataset is None and len(train_x) != len(y):
        raise ValueError(f"{len(train_x)} inputs but {len(y)} labels")
    num_classes = config.num_classes or getattr(model, "num_classes", None) or int(y.max()) + 1
    if y.max() >= num_classes:
        raise ValueError(f"label {int(y.max())} out of range for {num_classes} classes")

    counts = np.bincount(y, minlength=num_classes)
    weights = compute_class_weights(
        counts, method=config.class_weighting, beta=config.effective_beta
    )
    criterion = make_loss(config.loss, weights, gamma=config.focal_gamma).to(device)
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )

    has_val = val_x is not None
    val_labels = _labels(val_y, val_x if isinstance(val_x, Dataset) else None) if has_val else None
    x_dev = train_x.to(device) if dataset is None else None
    y_dev = torch.as_tensor(y, device=device)

    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = len(_epoch_batches(y, config, num_classes, torch.Generator()))
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    total_steps = steps_per_epoch * epochs
    if config.max_steps is not None:
        if config.max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        total_steps = min(total_steps, config.max_steps)
        epochs = math.ceil(total_steps / steps_per_epoch)
    result = TrainResult(model=model, class_weights=weights, device=str(device))
    best_key: tuple[float, float] | None = None
    best_state: dict | None = None
    stale = 0
    step = 0
    last_loss = torch.tensor(float("nan"))

    with _seeded(config.seed, device):
        for epoch in range(1, epochs + 1):
            model.train()
            batches = _epoch_batches(y, config, num_classes, generator)
            if dataset is not None:
                loader = DataLoader(
                    dataset,
                    batch_sampler=[b.tolist() for b in batches],
                    num_workers=config.num_workers,
                    pin_memory=device.type == "cuda",
                )
                pairs = ((xb, idx) for (xb, _), idx in zip(loader, batches, strict=True))
            else:
                pairs = ((x_dev[idx.to(device)], idx) for idx in batches)
            loss_sum = torch.zeros((), device=device)
            seen = 0
            for xb, idx in pairs:
                if step >= total_steps:
                    break
                xb = xb.to(device, non_blocking=True)
                yb = y_dev[idx.to(device)]
                if dataset is None and config.augment is not None:
                    xb = config.augment(xb)
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * _lr_factor(config, step, total_steps)
                loss = criterion(model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                step += 1
                loss_sum += loss.detach() * len(yb)
                seen += len(yb)
                last_loss = loss.detach()
                if progress is not None:
                    progress(step, total_steps, float(last_loss))

            record = {"epoch": epoch, "loss": float(loss_sum) / seen}
            record["val_balanced_accuracy"] = None
            if has_val:
                probs = score(model, val_x, batch_size=config.eval_batch_size, device=device).probs
                val_bacc = balanced_accuracy(val_labels, probs.argmax(1), num_classes)
                picked = probs[np.arange(len(val_labels)), val_labels]
                val_loss = float(-np.log(np.clip(picked, 1e-12, None)).mean())
                record.update(val_balanced_accuracy=val_bacc, val_loss=val_loss)
                # Higher balanced accuracy wins; on a tie (small holdouts), lower loss.
                key = (val_bacc, -val_loss)
                if best_key is None or key > best_key:
                    best_key, stale = key, 0
                    result.best_epoch = epoch
                    if config.keep_best_epoch:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
            else:
                result.best_epoch = epoch
            result.history.append(record)
            patience = config.early_stopping_patience
            # Early stopping never cuts training below `min_steps`.
            if has_val and patience is not None and stale >= patience and step >= config.min_steps:
                result.stopped_early = epoch < epochs
                break

    if progress is not None and step < total_steps:
        # Stopped before the plan: the steps run were all there was to do.
        progress(step, step, float(last_loss))

    if best_key is not None:
        result.best_val_balanced_accuracy = best_key[0]
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result

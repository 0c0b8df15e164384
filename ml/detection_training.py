"""Training the tiny-object detector (:class:`ml.detection.CenterNet`): targets, losses, the loop.

Each step draws a batch of native-resolution crops (:mod:`ml.detection_augment`): most of
them centred on a true box drawn rare classes first, the rest anywhere on a page, margins
included. A crop's targets are one heatmap per class with a Gaussian peak at each object's
centre cell, and at that cell the centre's offset within it and the box's log width and
height. The heatmap loss is CenterNet's penalty-reduced focal loss times per-class weights of
the box counts (imbalance); offsets and sizes are L1 at the centres. Deterministic by seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.detection import ALIGN, STRIDE, CenterNet, as_page, as_targets, background_value, seeded
from ml.detection_augment import NO_AUGMENT, DetectionAugment, sample_crop
from ml.device import pick_device
from ml.losses import class_weights as weights_from_counts


def make_targets(boxes: np.ndarray, labels: np.ndarray, num_classes: int, size: int):
    """Training targets of one ``size × size`` crop: heatmap ``(K, s, s)`` (a Gaussian at
    each centre cell, peak 1), regression ``(4, s, s)`` and its mask ``(s, s)`` at the
    centre cells, with ``s = size / 4``."""
    s = size // STRIDE
    heat = np.zeros((num_classes, s, s), dtype=np.float32)
    reg = np.zeros((4, s, s), dtype=np.float32)
    mask = np.zeros((s, s), dtype=np.float32)
    ys, xs = np.mgrid[0:s, 0:s]
    for (x1, y1, x2, y2), label in zip(boxes, labels, strict=True):
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
        ix, iy = min(int(cx), s - 1), min(int(cy), s - 1)
        # Tiny objects get a peak about one cell wide; larger ones a wider bump.
        sx, sy = max(0.5, w / STRIDE / 6), max(0.5, h / STRIDE / 6)
        bump = np.exp(-((xs - ix) ** 2) / (2 * sx**2) - ((ys - iy) ** 2) / (2 * sy**2))
        np.maximum(heat[label], bump, out=heat[label])
        reg[:, iy, ix] = (cx - ix, cy - iy, math.log(w), math.log(h))
        mask[iy, ix] = 1.0
    return heat, reg, mask


def heatmap_focal_loss(logits, target, class_weight=None, alpha: float = 2.0, beta: float = 4.0):
    """CenterNet's penalty-reduced focal loss, each class's terms times ``class_weight (K,)``,
    normalised by the number of object centres."""
    pos = target >= 1.0 - 1e-4
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    loss = torch.where(pos, -log_p * (1 - p) ** alpha, -log_not_p * p**alpha * (1 - target) ** beta)
    if class_weight is not None:
        loss = loss * class_weight.view(1, -1, 1, 1)
    return loss.sum() / pos.sum().clamp(min=1)


def regression_loss(pred, target, mask):
    """L1 of offsets and log sizes at object centres, per centre."""
    m = mask.unsqueeze(1)
    return (F.l1_loss(pred * m, target * m, reduction="sum")) / mask.sum().clamp(min=1)


@dataclass
class DetectionTrainConfig:
    """How to train the detector. ``steps`` optimisation steps of ``batch_size`` crops of
    ``tile_size`` pixels (a multiple of 16); ``object_crops`` is the share of crops centred
    on a true box, drawn rarer classes first (``class_weighting`` of their box counts, which
    also weights the heatmap loss: ``none``, ``inverse`` or ``effective``);
    ``augment`` the domain augmentations (None for plain crops)."""

    steps: int = 400
    batch_size: int = 16
    tile_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    class_weighting: str = "inverse"
    max_class_weight: float = 5.0
    object_crops: float = 0.7
    size_weight: float = 0.5
    augment: DetectionAugment | None = field(default_factory=DetectionAugment)
    seed: int = 0
    device: str | None = None
    grad_clip: float = 5.0


@dataclass
class DetectionTrainResult:
    """What training produced (the fields ``ml.training.TrainResult`` has that callers read)."""

    model: CenterNet
    history: list[dict]
    device: str
    seconds: float
    class_weights: np.ndarray | None = None


def _box_picker(targets, weight_per_class: np.ndarray):
    """Probabilities over every (page, box) pair, rare classes drawn more."""
    pairs = [(p, b) for p, (_, labels) in enumerate(targets) for b in range(len(labels))]
    if not pairs:
        return [], None
    w = np.array([weight_per_class[targets[p][1][b]] for p, b in pairs], dtype=np.float64)
    return pairs, torch.as_tensor(w / w.sum())


def train_detector(
    model: CenterNet,
    pages: Sequence,
    targets: Sequence,
    *,
    config: DetectionTrainConfig | None = None,
    progress=None,
) -> DetectionTrainResult:
    """Trains ``model`` on ``pages`` (see the module's note) and their true boxes for
    ``config.steps`` steps of random native-resolution crops; deterministic by
    ``config.seed`` on a given device. ``progress(step, total, loss)`` after each step."""
    config = config or DetectionTrainConfig()
    if config.tile_size % ALIGN:
        raise ValueError(f"tile_size must be a multiple of {ALIGN}, got {config.tile_size}")
    if len(pages) != len(targets):
        raise ValueError(f"{len(pages)} pages but {len(targets)} box lists")
    started = time.perf_counter()
    device = pick_device(config.device)
    k = model.num_classes
    # Pages are kept as bytes, one at a time: a quarter of the memory of floats, and
    # lossless for 8-bit scans.
    compact, backgrounds = [], []
    for raw in pages:
        page = as_page(raw, model.in_channels)
        backgrounds.append(background_value(page))
        compact.append((page * 255).round().to(torch.uint8))
    pages = compact
    targets = [as_targets(t) for t in targets]
    for page, (_, labels) in enumerate(targets):
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"page {page} has a label outside 0..{k - 1}: {labels.tolist()}")
    counts = np.bincount(
        np.concatenate([t[1] for t in targets] + [np.empty(0, np.int64)]), minlength=k
    )
    weights = np.minimum(
        weights_from_counts(counts, method=config.class_weighting), config.max_class_weight
    )
    weights = weights / weights.mean()
    class_weight = torch.as_tensor(weights, dtype=torch.float32, device=device)
    pairs, pair_probs = _box_picker(targets, weights)
    augment = config.augment or NO_AUGMENT
    generator = torch.Generator().manual_seed(config.seed)
    model.to(device)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    warmup = max(1, config.steps // 20)
    history: list[dict] = []
    size = config.tile_size
    with seeded(config.seed, device):
        model.train()
        for step in range(config.steps):
            crops, heats, regs, masks = [], [], [], []
            for _ in range(config.batch_size):
                if pairs and float(torch.rand((), generator=generator)) < config.object_crops:
                    p, b = pairs[int(torch.multinomial(pair_probs, 1, generator=generator))]
                else:
                    p, b = int(torch.randint(len(pages), (), generator=generator)), None
                tile, boxes, labels = sample_crop(
                    pages[p],
                    *targets[p],
                    size=size,
                    background=backgrounds[p],
                    augment=augment,
                    generator=generator,
                    around=b,
                )
                heat, reg, mask = make_targets(boxes, labels, k, size)
                crops.append(tile)
                heats.append(torch.from_numpy(heat))
                regs.append(torch.from_numpy(reg))
                masks.append(torch.from_numpy(mask))
            xb = torch.stack(crops).to(device)
            heat_t, reg_t, mask_t = (torch.stack(t).to(device) for t in (heats, regs, masks))
            scale = (
                min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / config.steps))
            )
            for group in optimiser.param_groups:
                group["lr"] = config.lr * scale
            heat_logits, reg = model(xb)
            heat_loss = heatmap_focal_loss(heat_logits, heat_t, class_weight)
            offset_loss = regression_loss(reg[:, :2], reg_t[:, :2], mask_t)
            size_loss = regression_loss(reg[:, 2:], reg_t[:, 2:], mask_t)
            loss = heat_loss + offset_loss + config.size_weight * size_loss
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimiser.step()
            value = float(loss.detach())
            if step % 25 == 0 or step == config.steps - 1:
                history.append(
                    {"step": step + 1, "loss": value, "heatmap": float(heat_loss.detach())}
                )
            if progress is not None:
                progress(step + 1, config.steps, value)
    model.eval()
    return DetectionTrainResult(
        model=model,
        history=history,
        device=str(device),
        seconds=time.perf_counter() - started,
        class_weights=weights,
    )

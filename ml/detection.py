"""A detector of tiny objects on large pages: CenterNet-style, anchor-free, trained from scratch.

The network keeps an output stride of 4 (a five-pixel symbol still covers a cell) and sees
context through a small pyramid (strides 8 and 16 upsampled into the stride-4 map), which is
what tells an augmentation dot beside a notehead from a lone staccato dot. Its heads give,
per cell, one heatmap per class (a peak is an object's centre), the box's log width and
height in pixels and the sub-cell offset of the centre. The heatmap is trained with the
penalty-reduced focal loss of CenterNet (Zhou et al., 2019) weighted per class (rare symbols
count more), size and offset with L1 at object centres (:mod:`ml.detection_training`).

Crop, don't rescale: training draws tiles at native resolution (:mod:`ml.detection_augment`),
and prediction (:func:`detect`) cuts each page into overlapping tiles, decodes each, keeps a
box in the tile that owns its centre and runs class-wise NMS over the page, so an object on a
tile border comes out once. Boxes are ``(x1, y1, x2, y2)`` pixels
(:mod:`ml.detection_metrics`).

A page is a float array or tensor ``(C, H, W)`` or ``(H, W)`` with values in [0, 1] (uint8 is
divided by 255; ``(H, W, C)`` with C in 1, 3, 4 is transposed); its true boxes a dict
``{"boxes": (m, 4), "labels": (m,)}``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.detection_metrics import batched_nms
from ml.device import pick_device

STRIDE = 4
# Inputs are padded to a multiple of the deepest stride.
ALIGN = 16


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _head(channels: int, out: int, bias: float = 0.0) -> nn.Sequential:
    head = nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, out, 1),
    )
    nn.init.constant_(head[-1].bias, bias)
    return head


class CenterNet(nn.Module):
    """Backbone at stride 4 with a stride 8/16 context path, and three heads.

    ``forward(x)`` on images ``(n, C, H, W)`` (H, W multiples of 16) gives heatmap logits
    ``(n, K, H/4, W/4)`` and regressions ``(n, 4, H/4, W/4)``: centre offset (x, y) within the
    cell and log box width and height in pixels. ``embed(x)`` pools the deepest features,
    mean and max, ``(n, embedding_dim)``. ``dropout`` (spatial, before the heads) makes
    MC-dropout possible."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        width: int = 16,
        dropout: float = 0.1,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError("a detector needs at least one class")
        self.num_classes, self.in_channels, self.width = num_classes, in_channels, width
        fork = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
        with fork:
            if seed is not None:
                torch.manual_seed(seed)
            w = width
            self.stem = nn.Sequential(
                _block(in_channels, w, 2), _block(w, 2 * w, 2), _block(2 * w, 2 * w)
            )
            self.down8 = nn.Sequential(_block(2 * w, 4 * w, 2), _block(4 * w, 4 * w))
            self.down16 = nn.Sequential(_block(4 * w, 4 * w, 2), _block(4 * w, 4 * w, dilation=2))
            self.lateral8 = nn.Conv2d(4 * w, 2 * w, 1)
            self.lateral16 = nn.Conv2d(4 * w, 2 * w, 1)
            self.fuse = _block(2 * w, 2 * w)
            self.dropout = nn.Dropout2d(dropout)
            # A prior of 10% objectness per cell keeps the first steps' loss sane (CenterNet).
            self.heatmap = _head(2 * w, num_classes, bias=-2.19)
            self.regression = _head(2 * w, 4)
        self.embedding_dim = 8 * w

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c4 = self.stem(x)
        c8 = self.down8(c4)
        c16 = self.down16(c8)
        p8 = self.lateral8(c8) + F.interpolate(
            self.lateral16(c16), size=c8.shape[-2:], mode="nearest"
        )
        p4 = c4 + F.interpolate(p8, size=c4.shape[-2:], mode="nearest")
        return self.fuse(p4), c16

    def heads(self, p4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmap logits and regressions of stride-4 features (dropout applied)."""
        p4 = self.dropout(p4)
        return self.heatmap(p4), self.regression(p4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p4, _ = self._features(x)
        return self.heads(p4)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled deepest features ``(n, embedding_dim)``: mean and max over the image."""
        _, c16 = self._features(x)
        return torch.cat((c16.mean(dim=(2, 3)), c16.amax(dim=(2, 3))), dim=1)


# ---------------------------------------------------------------- pages


def as_page(page, in_channels: int) -> torch.Tensor:
    """A page as a float tensor ``(in_channels, H, W)`` in [0, 1] (see the module's note);
    grey pages are repeated to colour, colour pages averaged to grey."""
    t = torch.as_tensor(np.asarray(page)) if not torch.is_tensor(page) else page
    t = t.detach().cpu()
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    t = t.float()
    if t.dim() == 2:
        t = t.unsqueeze(0)
    elif t.dim() == 3 and t.shape[-1] in (1, 3, 4) and t.shape[0] not in (1, 3, 4):
        t = t.permute(2, 0, 1)
    if t.dim() != 3:
        raise ValueError(f"a page must be (C, H, W) or (H, W), got shape {tuple(t.shape)}")
    if t.shape[0] == 4:
        t = t[:3]
    if t.shape[0] != in_channels:
        t = t.mean(dim=0, keepdim=True) if in_channels == 1 else t[:1].expand(in_channels, -1, -1)
    return t.contiguous()


def as_targets(target) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes (m, 4) float32, labels (m,) int64)`` of a dict with ``boxes`` and ``labels``
    (or a ``(boxes, labels)`` pair)."""
    if isinstance(target, dict):
        boxes, labels = target.get("boxes", ()), target.get("labels", ())
    else:
        boxes, labels = target
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(boxes) != len(labels):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels")
    return boxes, labels


def background_value(page: torch.Tensor) -> float:
    """The page's paper: the median of its pixels (ink is a small part of a page)."""
    return float(page.median())


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """The global RNG (dropout) seeded for a block, restored after it."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# ---------------------------------------------------------------- prediction


@dataclass
class PageDetections:
    """The boxes found on one page, by descending score: ``boxes (m, 4)``, ``labels (m,)``,
    ``scores (m,)`` (the class's heatmap peak), ``class_probs (m, K)`` (the heatmaps at the
    box's centre cell, normalised over classes), ``uncertainty (m,)`` = 1 − max class prob,
    ``entropy (m,)`` over classes (nats), ``mutual_information (m,)`` between the class and
    the MC-dropout draws (zeros without draws), and ``embedding (d,)`` of the page."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    class_probs: np.ndarray
    uncertainty: np.ndarray
    entropy: np.ndarray
    mutual_information: np.ndarray
    embedding: np.ndarray

    def as_dict(self) -> dict:
        """``{"boxes", "labels", "scores"}``, as :mod:`ml.detection_metrics` reads."""
        return {"boxes": self.boxes, "labels": self.labels, "scores": self.scores}


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of overlapping windows of ``tile`` pixels covering ``length`` (the last one
    flush with the end)."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _owned(starts: list[int], tile: int) -> list[tuple[float, float]]:
    """The span of centres each window keeps: up to the middle of its overlap with the next."""
    cuts = [(a + tile + b) / 2 for a, b in zip(starts, starts[1:], strict=False)]
    edges = [-math.inf, *cuts, math.inf]
    return list(zip(edges, edges[1:], strict=False))


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1)


def _decode_tile(heat, reg, draws, score_threshold, max_per_tile):
    """Boxes of one tile's mean heatmap ``(K, h, w)``: local maxima at or above the
    threshold, their class probabilities (and per-draw ones ``(T, m, K)``)."""
    k, h, w = heat.shape
    peaks = heat == F.max_pool2d(heat.unsqueeze(0), 3, 1, 1).squeeze(0)
    flat = torch.where(peaks & (heat >= score_threshold), heat, torch.zeros_like(heat)).flatten()
    count = min(int((flat > 0).sum()), max_per_tile)
    scores, index = flat.topk(count)
    labels = index // (h * w)
    cell = index % (h * w)
    ys, xs = cell // w, cell % w
    r = reg[:, ys, xs]
    cx, cy = (xs + r[0]) * STRIDE, (ys + r[1]) * STRIDE
    bw, bh = r[2].clamp(max=8).exp(), r[3].clamp(max=8).exp()
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
    probs = heat[:, ys, xs].T
    probs = probs / probs.sum(dim=1, keepdim=True).clamp(min=1e-12)
    per_draw = None
    if draws is not None:
        per_draw = draws[:, :, ys, xs].permute(0, 2, 1)
        per_draw = per_draw / per_draw.sum(dim=2, keepdim=True).clamp(min=1e-12)
    return boxes, labels, scores, probs, per_draw


@torch.inference_mode()
def detect(
    model: CenterNet,
    pages: Sequence,
    *,
    tile_size: int = 384,
    overlap: int = 64,
    score_threshold: float = 0.05,
    max_per_tile: int = 300,
    nms_iou: float = 0.5,
    batch_size: int = 16,
    mc_samples: int = 0,
    seed: int = 0,
    device=None,
) -> list[PageDetections]:
    """Detections on each page, scored as overlapping ``tile_size`` tiles at native
    resolution (``overlap`` should exceed the largest object) and merged per page: a box is
    kept by the tile owning its centre, then class-wise NMS at ``nms_iou``. With
    ``mc_samples=T`` the heatmaps are the mean of T dropout draws and boxes carry the mutual
    information of their class with the draws. Deterministic by ``seed``."""
    if tile_size % ALIGN:
        raise ValueError(f"tile_size must be a multiple of {ALIGN}, got {tile_size}")
    device = pick_device(device)
    model.to(device).eval()
    k = model.num_classes
    results = []
    with seeded(seed, device):
        for raw in pages:
            page = as_page(raw, model.in_channels)
            _, h, w = page.shape
            bg = background_value(page)
            th = min(tile_size, math.ceil(h / ALIGN) * ALIGN)
            tw = min(tile_size, math.ceil(w / ALIGN) * ALIGN)
            ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
            own_y, own_x = _owned(ys, th), _owned(xs, tw)
            windows = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
            found = {name: [] for name in ("boxes", "labels", "scores", "probs", "draws")}
            means, maxes = [], []
            for start in range(0, len(windows), batch_size):
                chunk = windows[start : start + batch_size]
                tiles = [_window(page, xs[j], ys[i], th, tw, bg) for i, j in chunk]
                xb = torch.stack(tiles).to(device)
                p4, c16 = model._features(xb)
                means.append(c16.mean(dim=(2, 3)).float().cpu())
                maxes.append(c16.amax(dim=(2, 3)).float().cpu())
                if mc_samples:
                    model.dropout.train()
                    draws = torch.stack(
                        [torch.sigmoid(model.heads(p4)[0]) for _ in range(mc_samples)]
                    )
                    model.dropout.eval()
                    heat, reg = draws.mean(0), model.heads(p4)[1]
                else:
                    logits, reg = model.heads(p4)
                    heat, draws = torch.sigmoid(logits), None
                for n, (i, j) in enumerate(chunk):
                    boxes, labels, scores, probs, per_draw = _decode_tile(
                        heat[n].float(),
                        reg[n].float(),
                        None if draws is None else draws[:, n].float(),
                        score_threshold,
                        max_per_tile,
                    )
                    boxes = boxes.cpu().numpy().astype(np.float64) + [xs[j], ys[i], xs[j], ys[i]]
                    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
                    keep = (
                        (centre[:, 0] >= own_x[j][0])
                        & (centre[:, 0] < own_x[j][1])
                        & (centre[:, 1] >= own_y[i][0])
                        & (centre[:, 1] < own_y[i][1])
                    )
                    found["boxes"].append(boxes[keep])
                    found["labels"].append(labels.cpu().numpy()[keep])
                    found["scores"].append(scores.cpu().numpy()[keep])
                    found["probs"].append(probs.cpu().numpy()[keep])
                    if per_draw is not None:
                        found["draws"].append(per_draw.cpu().numpy()[:, keep])
            boxes = np.concatenate(found["boxes"]).reshape(-1, 4)
            boxes = np.clip(boxes, 0, [w, h, w, h])
            labels = np.concatenate(found["labels"]).astype(np.int64)
            scores = np.concatenate(found["scores"]).astype(np.float64)
            probs = np.concatenate(found["probs"]).reshape(-1, k).astype(np.float64)
            keep = batched_nms(boxes, scores, labels, nms_iou)
            boxes, labels, scores, probs = boxes[keep], labels[keep], scores[keep], probs[keep]
            entropy = _entropy(probs)
            if found["draws"]:
                per_draw = np.concatenate(found["draws"], axis=1)[:, keep].astype(np.float64)
                mutual = np.clip(entropy - _entropy(per_draw).mean(axis=0), 0, None)
            else:
                mutual = np.zeros(len(boxes))
            embedding = torch.cat((torch.cat(means).mean(0), torch.cat(maxes).amax(0))).numpy()
            results.append(
                PageDetections(
                    boxes=boxes.astype(np.float32),
                    labels=labels,
                    scores=scores.astype(np.float32),
                    class_probs=probs.astype(np.float32),
                    uncertainty=(1.0 - probs.max(axis=1, initial=0.0)).astype(np.float32),
                    entropy=entropy.astype(np.float32),
                    mutual_information=mutual.astype(np.float32),
                    embedding=embedding.astype(np.float32),
                )
            )
    return results


def _window(
    page: torch.Tensor, x0: int, y0: int, th: int, tw: int, background: float
) -> torch.Tensor:
    c, h, w = page.shape
    out = page.new_full((c, th, tw), background)
    hh, ww = min(th, h - y0), min(tw, w - x0)
    out[:, :hh, :ww] = page[:, y0 : y0 + hh, x0 : x0 + ww]
    return out

"""Training crops for the detector: tiles cut from pages at native resolution, with the
augmentations printed documents allow.

Crop, don't rescale: a tile is cut from the page at its own pixel scale (a small scale change
of a few percent is an augmentation, not a resize to the network's size), because a symbol of
five pixels resized away is gone. Crops may reach past the page edge into a margin filled
with the page's background, as scanned pages have margins. No horizontal flip by default: a
mirrored clef or flat is another symbol. Every random choice comes from one
``torch.Generator``, so a training run is reproducible by its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class DetectionAugment:
    """Domain augmentations for document crops, drawn per crop.

    ``scale``: zoom factor uniform in ``1 ± scale`` (small: symbols keep their size class);
    ``jitter``: pixels an object-centred crop moves around its object; ``margin``: how far
    (pixels) a crop may reach past the page edge; ``ink``: probability of thickening or
    thinning the strokes (a blend with a 3×3 min or max filter; ``dark_ink`` says which way
    the ink lies); ``blur``: probability of a slight Gaussian blur (sigma 0.4 to 1 pixel, as
    a scanner's optics); ``light``: the largest change of contrast (factor ``1 ± light``) and
    of paper brightness (``± light / 2``), as grey paper and uneven light; ``noise``: the
    largest standard deviation of added Gaussian noise; ``hflip``/``vflip``: mirror
    probabilities (0 for music symbols, whose mirror images are other symbols)."""

    scale: float = 0.08
    jitter: int = 6
    margin: int = 16
    ink: float = 0.5
    dark_ink: bool = True
    # Blur and light made a model trained on clean synthetic score pages hold on scanned ones
    # (mAP@0.5 0.88 instead of 0.56, benchmarks/detection_speed.py --scanned), clean ones
    # unchanged.
    blur: float = 0.3
    light: float = 0.2
    noise: float = 0.04
    hflip: float = 0.0
    vflip: float = 0.0

    def describe(self) -> str:
        """What training does to a crop, in words ("nothing" when every change is off)."""
        parts = []
        if self.scale > 0:
            parts.append(f"zoomed by up to ± {100 * self.scale:g}%")
        if self.jitter > 0:
            parts.append(f"moved by up to {self.jitter} px around its object")
        if self.margin > 0:
            parts.append(f"allowed {self.margin} px past the page edge")
        if self.ink > 0:
            parts.append(f"strokes thickened or thinned with probability {self.ink:g}")
        if self.blur > 0:
            parts.append(f"blurred slightly with probability {self.blur:g}")
        if self.light > 0:
            parts.append(f"contrast × 1 ± {self.light:g} and paper brightness ± {self.light / 2:g}")
        if self.noise > 0:
            parts.append(f"noise of up to {self.noise:g} standard deviation")
        if self.hflip > 0:
            parts.append(f"mirrored left to right with probability {self.hflip:g}")
        if self.vflip > 0:
            parts.append(f"upside down with probability {self.vflip:g}")
        return ", ".join(parts) or "nothing"


#: No augmentation at all: plain crops at native scale.
NO_AUGMENT = DetectionAugment(
    scale=0.0, jitter=0, margin=0, ink=0.0, blur=0.0, light=0.0, noise=0.0
)


def _blur(tile: torch.Tensor, sigma: float) -> torch.Tensor:
    offsets = torch.arange(-2, 3, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = tile.shape[0]
    x = F.pad(tile.unsqueeze(0), (2, 2, 2, 2), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    x = F.conv2d(x, kernel.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)
    return x.squeeze(0)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=generator))


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """An integer in ``[low, high]``."""
    if high <= low:
        return int(low)
    return int(torch.randint(low, high + 1, (), generator=generator))


def cut(page: torch.Tensor, x0: int, y0: int, size: int, background: float) -> torch.Tensor:
    """The ``size × size`` window of ``page (C, H, W)`` at ``(x0, y0)``, the parts outside
    the page filled with ``background``."""
    c, h, w = page.shape
    out = page.new_full((c, size, size), background)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + size, w), min(y0 + size, h)
    if sx1 > sx0 and sy1 > sy0:
        out[:, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = page[:, sy0:sy1, sx0:sx1]
    return out


def crop_boxes(
    boxes: np.ndarray, labels: np.ndarray, x0: float, y0: float, factor: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of a page moved into a crop at ``(x0, y0)`` scaled by ``factor``: the boxes
    whose centre falls inside the ``size × size`` crop, clipped to it."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4), labels.reshape(0)
    moved = (boxes - np.array([x0, y0, x0, y0])) * factor
    centre = (moved[:, :2] + moved[:, 2:]) / 2
    inside = (centre >= 0).all(axis=1) & (centre < size).all(axis=1)
    moved = np.clip(moved[inside], 0, size)
    return moved, labels[inside]


def _ink(tile: torch.Tensor, generator: torch.Generator, dark_ink: bool) -> torch.Tensor:
    thicken = bool(torch.rand((), generator=generator) < 0.5)
    # Dark ink grows under a min filter (max-pooling the negative image), shrinks under a max.
    grow_dark = thicken == dark_ink
    x = tile.unsqueeze(0)
    pooled = -F.max_pool2d(-x, 3, 1, 1) if grow_dark else F.max_pool2d(x, 3, 1, 1)
    amount = _uniform(generator, 0.3, 1.0)
    return (x + amount * (pooled - x)).squeeze(0)


def sample_crop(
    page: torch.Tensor,
    boxes: np.ndarray,
    labels: np.ndarray,
    *,
    size: int,
    background: float,
    augment: DetectionAugment,
    generator: torch.Generator,
    around: int | None = None,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """One training crop ``(C, size, size)`` of ``page`` with its boxes and labels (a page
    kept as uint8 gives a float crop in [0, 1]; ``background`` is in [0, 1] either way).

    With ``around`` (a box index) the crop holds that box, at a random place inside it and
    moved by up to ``augment.jitter`` pixels; otherwise it lies anywhere on the page (up to
    ``augment.margin`` past its edges)."""
    _, h, w = page.shape
    factor = 1.0 + _uniform(generator, -augment.scale, augment.scale) if augment.scale else 1.0
    source = max(4, int(round(size / factor)))
    factor = size / source
    if around is not None:
        x1, y1, x2, y2 = boxes[around]
        # Any origin from which the crop holds the whole box (its centre when it is larger).
        x0 = _randint(generator, *sorted((int(np.floor(x2 - source)), int(np.ceil(x1)))))
        y0 = _randint(generator, *sorted((int(np.floor(y2 - source)), int(np.ceil(y1)))))
        x0 += _randint(generator, -augment.jitter, augment.jitter)
        y0 += _randint(generator, -augment.jitter, augment.jitter)
    else:
        m = augment.margin
        x0 = _randint(generator, -m, max(-m, w - source + m))
        y0 = _randint(generator, -m, max(-m, h - source + m))
    compact = page.dtype == torch.uint8
    tile = cut(page, x0, y0, source, round(background * 255) if compact else background)
    if compact:
        tile = tile.float() / 255.0
    if source != size:
        tile = F.interpolate(
            tile.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False
        ).squeeze(0)
    crop_b, crop_l = crop_boxes(boxes, labels, x0, y0, factor, size)
    if augment.ink and torch.rand((), generator=generator) < augment.ink:
        tile = _ink(tile, generator, augment.dark_ink)
    if augment.hflip and torch.rand((), generator=generator) < augment.hflip:
        tile = tile.flip(-1)
        crop_b = np.stack([size - crop_b[:, 2], crop_b[:, 1], size - crop_b[:, 0], crop_b[:, 3]], 1)
    if augment.vflip and torch.rand((), generator=generator) < augment.vflip:
        tile = tile.flip(-2)
        crop_b = np.stack([crop_b[:, 0], size - crop_b[:, 3], crop_b[:, 2], size - crop_b[:, 1]], 1)
    if augment.blur and torch.rand((), generator=generator) < augment.blur:
        tile = _blur(tile, _uniform(generator, 0.4, 1.0))
    if augment.light:
        contrast = 1.0 + _uniform(generator, -augment.light, augment.light)
        shift = _uniform(generator, -augment.light / 2, augment.light / 2)
        tile = (tile - background) * contrast + background + shift
    if augment.noise:
        std = _uniform(generator, 0.0, augment.noise)
        tile = tile + std * torch.randn(tile.shape, generator=generator)
    return tile.clamp(0.0, 1.0), crop_b.reshape(-1, 4), crop_l.reshape(-1)

"""Synthetic, class-imbalanced demo data: sklearn digits with rare classes, and an
"industrial inspection" image set (good parts vs rare defects) on scikit-image textures.

This is the only module of ``ml`` allowed to use scikit-learn and scikit-image; both are
imported inside the functions that need them, so ``import ml.synthetic`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_RARE_DIGITS = (3, 8)


def _cut_rare(
    y: np.ndarray, rare_classes: Sequence[int], rare_fraction: float, seed: int
) -> np.ndarray:
    """Indices to keep: every item of common classes, ``rare_fraction`` of each rare class."""
    if not 0.0 < rare_fraction <= 1.0:
        raise ValueError(f"rare_fraction must lie in (0, 1], got {rare_fraction}")
    rng = np.random.default_rng(seed)
    keep = [np.flatnonzero(~np.isin(y, list(rare_classes)))]
    for c in sorted(set(int(c) for c in rare_classes)):
        members = np.flatnonzero(y == c)
        if len(members) == 0:
            raise ValueError(f"rare class {c} does not occur in the data")
        n_keep = max(1, int(round(rare_fraction * len(members))))
        keep.append(rng.choice(members, size=n_keep, replace=False))
    return np.sort(np.concatenate(keep))


def load_digits_arrays(
    rare_classes: Sequence[int] = DEFAULT_RARE_DIGITS,
    rare_fraction: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits with ``rare_classes`` cut to ``rare_fraction`` of their items.

    Returns ``X`` float32 ``(n, 64)`` scaled to [0, 1] and ``y`` int64 ``(n,)``; with the
    defaults two classes keep ~9 of ~180 items each, about a 20:1 imbalance. Which rare items
    survive depends on ``seed`` only.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    y = digits.target.astype(np.int64)
    keep = _cut_rare(y, rare_classes, rare_fraction, seed)
    x = (digits.data[keep] / 16.0).astype(np.float32)
    return x, y[keep]


def make_digits_imagefolder(
    out_dir: str | Path,
    *,
    rare_classes: Sequence[int] = DEFAULT_RARE_DIGITS,
    rare_fraction: float = 0.05,
    image_size: int = 32,
    seed: int = 0,
) -> dict:
    """Write the imbalanced digits as an ImageFolder of grayscale PNGs (``out_dir/<digit>/``).

    Each 8x8 digit is enlarged to ``image_size`` pixels with nearest-neighbour sampling so the
    strokes stay crisp. Returns ``{"root", "classes", "class_counts", "n_images"}``.
    """
    from PIL import Image

    x, y = load_digits_arrays(rare_classes, rare_fraction, seed)
    root = Path(out_dir)
    classes = [str(c) for c in range(10)]
    counts = dict.fromkeys(classes, 0)
    for i, (pixels, label) in enumerate(zip(x, y, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray((pixels.reshape(8, 8) * 255).round().astype(np.uint8), mode="L")
        img.resize((image_size, image_size), Image.NEAREST).save(folder / f"digit_{i:05d}.png")
        counts[str(label)] += 1
    return {"root": str(root), "classes": classes, "class_counts": counts, "n_images": len(y)}

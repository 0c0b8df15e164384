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


INSPECTION_CLASSES = ("good", "scratch", "dent", "stain")
#: Default share of each class: defects are rare, as on a real production line.
INSPECTION_PROPORTIONS = {"good": 0.82, "scratch": 0.08, "dent": 0.06, "stain": 0.04}
#: scikit-image textures (CC0) that ship inside the package, so nothing is downloaded.
TEXTURES = ("brick", "grass", "gravel")


def _load_textures() -> list[np.ndarray]:
    """Grayscale textures normalised to a common mean and contrast, so that the material
    says nothing about the class."""
    import skimage.data

    textures = []
    for name in TEXTURES:
        t = getattr(skimage.data, name)().astype(np.float32) / 255.0
        textures.append(np.clip(0.5 + (t - t.mean()) / (t.std() + 1e-6) * 0.12, 0.0, 1.0))
    return textures


def _class_counts(n_images: int, class_counts: dict | None) -> dict[str, int]:
    if class_counts is not None:
        unknown = set(class_counts) - set(INSPECTION_CLASSES)
        if unknown:
            raise ValueError(f"unknown classes {sorted(unknown)}; use {INSPECTION_CLASSES}")
        return {c: int(class_counts.get(c, 0)) for c in INSPECTION_CLASSES}
    counts = {c: max(1, round(n_images * p)) for c, p in INSPECTION_PROPORTIONS.items()}
    counts["good"] = n_images - sum(v for c, v in counts.items() if c != "good")
    if counts["good"] < 1:
        raise ValueError(f"n_images={n_images} is too small for every class to appear")
    return counts


def _background(rng: np.random.Generator, textures: list[np.ndarray], size: int) -> np.ndarray:
    """A ``(size, size, 3)`` patch of material under random lighting and tint."""
    tex = textures[rng.integers(len(textures))]
    top, left = rng.integers(0, tex.shape[0] - size), rng.integers(0, tex.shape[1] - size)
    patch = np.rot90(tex[top : top + size, left : left + size], k=rng.integers(4))
    gray = (patch - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.06, 0.06)
    # A gentle illumination gradient: real parts are never lit perfectly evenly.
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    gray = gray + rng.uniform(0.0, 0.08) * (np.cos(angle) * xx + np.sin(angle) * yy)
    tint = 1.0 + rng.uniform(-0.06, 0.06, size=3)
    return gray[:, :, None] * tint[None, None, :]


def _scratch(img: np.ndarray, rng: np.random.Generator, scale: float) -> tuple:
    size = img.shape[0]
    length = rng.uniform(0.3, 0.6) * size
    angle = rng.uniform(0, np.pi)
    cx, cy = rng.uniform(0.3, 0.7, size=2) * size
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    x0, y0, x1, y1 = cx - dx, cy - dy, cx + dx, cy + dy
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    # Distance from each pixel to the segment, for an anti-aliased line.
    t = np.clip(((xx - x0) * (x1 - x0) + (yy - y0) * (y1 - y0)) / (length**2), 0.0, 1.0)
    dist = np.hypot(xx - (x0 + t * (x1 - x0)), yy - (y0 + t * (y1 - y0)))
    width = rng.uniform(0.6, 1.2) * scale
    alpha = np.clip(1.0 - (dist - width / 2), 0.0, 1.0)
    strength = rng.uniform(0.25, 0.45) * rng.choice([-1.0, 1.0])
    img += (alpha * strength)[:, :, None]
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _dent(img: np.ndarray, rng: np.random.Generator, scale: float) -> tuple:
    size = img.shape[0]
    r = rng.uniform(2.5, 4.5) * scale
    cx, cy = rng.uniform(0.2, 0.8, size=2) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    ux, uy = (xx - cx) / r, (yy - cy) / r
    bump = np.exp(-(ux**2 + uy**2) / 2)
    light = rng.uniform(0, 2 * np.pi)
    # A depression lit from one side: dark rim facing the light, bright rim opposite.
    shade = bump * (0.35 * (np.cos(light) * ux + np.sin(light) * uy) - rng.uniform(0.15, 0.3))
    img += shade[:, :, None]
    return (cx - 2 * r, cy - 2 * r, cx + 2 * r, cy + 2 * r)


def _stain(img: np.ndarray, rng: np.random.Generator, scale: float) -> tuple:
    size = img.shape[0]
    cx, cy = rng.uniform(0.3, 0.7, size=2) * size
    r = rng.uniform(7.0, 12.0) * scale
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    mask = np.zeros((size, size), dtype=np.float32)
    for _ in range(3):  # a few overlapping blobs make an irregular outline
        ox, oy = rng.normal(0, r / 3, size=2)
        mask += np.exp(-((xx - cx - ox) ** 2 + (yy - cy - oy) ** 2) / (2 * (r / 1.6) ** 2))
    mask = np.clip(mask, 0.0, 1.0) * rng.uniform(0.35, 0.65)
    colour = np.array([0.8, 0.62, 0.4]) * rng.uniform(0.85, 1.15)  # rust/oil brown
    img[:] = img * (1 - mask[:, :, None]) + img * colour * 1.2 * mask[:, :, None]
    return (cx - r, cy - r, cx + r, cy + r)


_DEFECTS = {"scratch": _scratch, "dent": _dent, "stain": _stain}


def make_inspection_dataset(
    out_dir: str | Path,
    *,
    n_images: int = 600,
    image_size: int = 64,
    class_counts: dict | None = None,
    seed: int = 0,
) -> dict:
    """Write a class-imbalanced "industrial inspection" ImageFolder of RGB PNGs.

    Classes: ``good`` parts and rare defects ``scratch`` (thin line), ``dent`` (small shaded
    pit) and ``stain`` (large discoloured blob), drawn on scikit-image's brick, grass and
    gravel textures under varying light. Default shares follow
    :data:`INSPECTION_PROPORTIONS`; ``class_counts`` sets exact numbers instead. Images are
    generated and written one at a time, so memory stays flat for any ``n_images``. Every
    image depends only on ``seed`` and its index, so a set is reproducible.

    Also writes ``out_dir/manifest.csv`` (path, label, roi: the defect's bounding box, empty
    for good parts) for :class:`ml.data.ManifestDataset` with ``crop="roi"``. Returns
    ``{"root", "classes", "class_counts", "n_images", "image_size", "manifest", "seed"}``.
    """
    import csv

    from PIL import Image

    if image_size < 16:
        raise ValueError("image_size must be at least 16 pixels")
    counts = _class_counts(n_images, class_counts)
    labels = np.repeat(np.array(INSPECTION_CLASSES), [counts[c] for c in INSPECTION_CLASSES])
    np.random.default_rng(seed).shuffle(labels)
    textures = _load_textures()
    scale = image_size / 64.0
    root = Path(out_dir)
    for c in INSPECTION_CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "roi"])
        for i, label in enumerate(labels):
            rng = np.random.default_rng([seed, i])
            img = _background(rng, textures, image_size)
            roi = ""
            if label != "good":
                box = _DEFECTS[label](img, rng, scale)
                roi = ",".join(str(int(round(min(max(v, 0), image_size)))) for v in box)
            pixels = (np.clip(img, 0.0, 1.0) * 255).round().astype(np.uint8)
            rel = f"{label}/{label}_{i:05d}.png"
            Image.fromarray(pixels, mode="RGB").save(root / rel)
            writer.writerow([rel, label, roi])
    return {
        "root": str(root),
        "classes": list(INSPECTION_CLASSES),
        "class_counts": counts,
        "n_images": int(len(labels)),
        "image_size": image_size,
        "manifest": str(manifest),
        "seed": seed,
    }

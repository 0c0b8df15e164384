"""Reading labeled images: ImageFolder layouts and CSV/JSONL manifests, decoded with Pillow.

Two ways to bring an image to the model's input size:

* ``crop=None`` rescales the whole image to ``image_size``;
* "crop, don't rescale" (``crop="center"``, ``crop="roi"`` or a fixed box) cuts a window of
  exactly ``image_size`` pixels around a region of interest at native pixel scale, because
  the size of a defect can be what decides its class and rescaling would erase it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
UNLABELED = -1

Box = tuple[float, float, float, float]
Crop = str | Box | None


class ImageReadError(OSError):
    """An image file is missing, corrupt or not an image; the message names the file."""


def _size_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def window_around(box: Box, size: int | Sequence[int], image_wh: tuple[int, int]) -> Box:
    """A ``size`` window (left, top, right, bottom) centred on ``box``, at native scale.

    The window is moved back inside the image when the image is large enough, so a region
    of interest near the border is not padded with black; it is only padded when the image
    itself is smaller than the window.
    """
    h, w = _size_hw(size)
    img_w, img_h = image_wh
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    left, top = round(cx - w / 2.0), round(cy - h / 2.0)
    if img_w >= w:
        left = min(max(left, 0), img_w - w)
    if img_h >= h:
        top = min(max(top, 0), img_h - h)
    return (left, top, left + w, top + h)


def _open(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            # In place: a copy per image cost as much as decoding a small PNG.
            ImageOps.exif_transpose(img, in_place=True)
    except FileNotFoundError as exc:
        raise ImageReadError(f"image not found: {path}") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"cannot decode image {path}: {exc}") from exc
    if img.mode.startswith("I"):
        # 16/32-bit grayscale (common from industrial cameras): Pillow's convert("L") would
        # clip it to white, so scale to 8 bits ourselves.
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if arr.max() <= 65535 else float(arr.max())
        img = Image.fromarray((arr / top * 255.0).round().astype(np.uint8), mode="L")
    return img if img.mode == mode else img.convert(mode)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """A Pillow image as a float32 tensor ``(C, H, W)`` in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def load_image_array(
    path: str | Path,
    *,
    image_size: int | Sequence[int],
    mode: str = "RGB",
    crop_box: Box | str | None = None,
) -> np.ndarray:
    """Like :func:`load_image`, but the pixels as uint8 ``(H, W, C)``: stacking many of these
    and converting once is cheaper than one small tensor per image."""
    arr = np.asarray(_fit(_open(Path(path), mode), image_size, crop_box), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def batch_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(n, H, W, C)`` -> float32 ``(n, C, H, W)`` in [0, 1], in one conversion."""
    n, h, w, c = images.shape
    # Converting into a contiguous tensor is about twice as fast as converting a permuted
    # view and making it contiguous afterwards; the values are the same.
    out = torch.empty((n, c, h, w), dtype=torch.float32)
    out.copy_(torch.from_numpy(images).permute(0, 3, 1, 2))
    return out.div_(255.0)


def _fit(img: Image.Image, image_size: int | Sequence[int], crop_box) -> Image.Image:
    h, w = _size_hw(image_size)
    if crop_box is None:
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        return img
    if crop_box == "center":
        crop_box = (0, 0, img.size[0], img.size[1])
    return img.crop(window_around(crop_box, (h, w), img.size))


def load_image(
    path: str | Path,
    *,
    image_size: int | Sequence[int],
    mode: str = "RGB",
    crop_box: Box | str | None = None,
) -> torch.Tensor:
    """Decode one image into a float32 tensor ``(C, H, W)`` in [0, 1].

    Without ``crop_box`` the whole image is rescaled to ``image_size``. With ``crop_box``
    (left, top, right, bottom: the region of interest, in pixels) a window of exactly
    ``image_size`` is cut around the box's centre at native scale: nothing is rescaled;
    ``crop_box="center"`` cuts that window at the image's centre.
    ``mode`` is a Pillow mode, ``"RGB"`` (3 channels) or ``"L"`` (1). A missing or corrupt
    file raises :class:`ImageReadError` naming it.
    """
    return to_tensor(_fit(_open(Path(path), mode), image_size, crop_box))


class _ImageDataset(Dataset):
    """Items ``(tensor, label)`` from a list of files; shared by the folder and manifest readers."""

    def __init__(
        self,
        paths: list[Path],
        targets: np.ndarray,
        classes: list[str],
        *,
        rois: list[Box | None] | None,
        image_size: int | Sequence[int],
        crop: Crop,
        augment: Callable[[torch.Tensor], torch.Tensor] | None,
        mode: str,
    ) -> None:
        if isinstance(crop, str) and crop not in ("center", "roi"):
            raise ValueError(f"unknown crop {crop!r}; use None, 'center', 'roi' or a box")
        self.paths = paths
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.rois = rois
        self.image_size = image_size
        self.crop = crop
        self.augment = augment
        self.mode = mode

    def __len__(self) -> int:
        return len(self.paths)

    def _crop_box(self, index: int) -> Box | str | None:
        if self.crop is None:
            return None
        if self.crop == "roi" and self.rois is not None and self.rois[index] is not None:
            return self.rois[index]
        if isinstance(self.crop, str):
            # "center", or "roi" for an item without one: a window at the image centre.
            return "center"
        return self.crop

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = load_image(
            self.paths[index],
            image_size=self.image_size,
            mode=self.mode,
            crop_box=self._crop_box(index),
        )
        if self.augment is not None:
            x = self.augment(x)
        return x, int(self.targets[index])

    def class_counts(self) -> np.ndarray:
        """Labeled items per class (unlabeled items are not counted)."""
        labeled = self.targets[self.targets >= 0]
        return np.bincount(labeled, minlength=len(self.classes))

    def subset(self, indices: Sequence[int] | np.ndarray) -> _ImageDataset:
        """A dataset over ``indices`` with the same settings (keeps ``targets``, unlike
        ``torch.utils.data.Subset``)."""
        idx = np.asarray(indices, dtype=np.int64)
        sub = object.__new__(type(self))
        sub.__dict__.update(self.__dict__)
        sub.paths = [self.paths[i] for i in idx]
        sub.targets = self.targets[idx]
        sub.rois = [self.rois[i] for i in idx] if self.rois is not None else None
        return sub

    def verify(self) -> list[tuple[str, str]]:
        """Try to decode every file; return ``(path, reason)`` for each one that fails."""
        bad = []
        for path in self.paths:
            try:
                _open(path, self.mode)
            except ImageReadError as exc:
                bad.append((str(path), str(exc)))
        return bad


class ImageFolderDataset(_ImageDataset):
    """Images laid out as ``root/<class>/<...>/<file>``; labels are the folder names.

    ``classes`` fixes the label order (default: sorted folder names), so that indices stay
    stable when a class has no images yet. Hidden files and non-image files are ignored.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        classes: Sequence[str] | None = None,
        image_size: int | Sequence[int] = 64,
        crop: Crop = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        mode: str = "RGB",
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        if classes is None:
            classes = sorted(
                p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
        paths, targets = [], []
        for label, name in enumerate(classes):
            for dirpath, dirnames, filenames in os.walk(self.root / name):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for fname in sorted(filenames):
                    if not fname.startswith(".") and Path(fname).suffix.lower() in IMAGE_EXTENSIONS:
                        paths.append(Path(dirpath) / fname)
                        targets.append(label)
        if not paths:
            raise ValueError(f"no images found under {self.root}/<class>/")
        super().__init__(
            paths,
            np.asarray(targets),
            list(classes),
            rois=None,
            image_size=image_size,
            crop=crop,
            augment=augment,
            mode=mode,
        )


_PATH_KEYS = ("path", "image", "file", "filename")
_LABEL_KEYS = ("label", "class")
_ROI_KEYS = ("roi_left", "roi_top", "roi_right", "roi_bottom")


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a CSV (with a header) or JSON-lines manifest, as dicts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}, line {number}: invalid JSON ({exc})") from exc
        return rows
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _parse_roi(row: dict, where: str) -> Box | None:
    raw = row.get("roi")
    if raw in (None, ""):
        if all(row.get(k) not in (None, "") for k in _ROI_KEYS):
            raw = [row[k] for k in _ROI_KEYS]
        else:
            return None
    if isinstance(raw, str):
        raw = raw.replace(";", ",").replace(" ", ",").split(",")
        raw = [v for v in raw if v]
    try:
        box = tuple(float(v) for v in raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: roi must be four numbers (left, top, right, bottom)") from exc
    if len(box) != 4 or box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"{where}: roi must be (left, top, right, bottom), got {box}")
    return box


class ManifestDataset(_ImageDataset):
    """Images listed in a CSV or JSON-lines manifest.

    Each row names a file (column ``path``, or ``image``/``file``/``filename``; relative to
    ``root``, default the manifest's folder), optionally a ``label`` (empty: unlabeled, target
    -1) and a region of interest (``roi`` as "left,top,right,bottom" or a JSON list, or the
    four ``roi_left``... columns) used by ``crop="roi"``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        root: str | Path | None = None,
        classes: Sequence[str] | None = None,
        image_size: int | Sequence[int] = 64,
        crop: Crop = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        mode: str = "RGB",
    ) -> None:
        self.manifest = Path(path)
        rows = read_manifest(self.manifest)
        if not rows:
            raise ValueError(f"manifest {self.manifest} lists no images")
        base = Path(root) if root is not None else self.manifest.parent
        path_key = next((k for k in _PATH_KEYS if k in rows[0]), None)
        if path_key is None:
            raise ValueError(f"manifest {self.manifest} needs a column named one of {_PATH_KEYS}")
        label_key = next((k for k in _LABEL_KEYS if k in rows[0]), None)
        labels = [str(r.get(label_key) or "") if label_key else "" for r in rows]
        if classes is None:
            classes = sorted({label for label in labels if label})
        class_to_idx = {c: i for i, c in enumerate(classes)}
        unknown = sorted({label for label in labels if label and label not in class_to_idx})
        if unknown:
            raise ValueError(f"manifest {self.manifest} has labels not in classes: {unknown}")
        self.rows = rows
        super().__init__(
            [base / str(r[path_key]) for r in rows],
            np.asarray([class_to_idx[label] if label else UNLABELED for label in labels]),
            list(classes),
            rois=[_parse_roi(r, f"{self.manifest}, row {i + 1}") for i, r in enumerate(rows)],
            image_size=image_size,
            crop=crop,
            augment=augment,
            mode=mode,
        )


def load_tensors(
    dataset: Dataset, *, batch_size: int = 256, num_workers: int = 0
) -> tuple[torch.Tensor, np.ndarray]:
    """Decode a whole dataset into one tensor ``(n, C, H, W)`` and its labels.

    Worth it for small sets trained many times (simulations): images are decoded once.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    xs, ys = [], []
    for xb, yb in loader:
        xs.append(xb)
        ys.append(yb)
    return torch.cat(xs), torch.cat(ys).numpy().astype(np.int64)

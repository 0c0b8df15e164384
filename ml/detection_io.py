"""Boxes in and out: COCO instances and YOLO folders, read into one neutral form and
written back.

The neutral form is a list of :class:`ImageBoxes`: a page's ``file_name`` (relative to the
data set's root), its size and its :class:`Box` es (``x, y`` of the top-left corner, ``w, h``,
in pixels, and the class by name). ``boxes is None`` means nobody labeled the page yet;
``()`` means labeled, with nothing on it.

What is checked, box by box (a bad box is left out with its reason, the rest are kept):

- ``malformed``: not four finite numbers (COCO ``bbox``), or not ``class cx cy w h`` (YOLO;
  a sixth number is read as a confidence), or an annotation of no image;
- ``unknown_class``: a category id / class index that the file's classes do not name;
- ``zero_area``: a width or height of zero or less;
- ``outside_image``: less than ``min_inside`` (half, by default) of the box's area inside
  the image (what lies within ``CLIP_TOLERANCE_PX`` of the border counts as inside). A box
  partly outside but mostly inside is **clipped** to the image and kept;
  each clip is reported (:attr:`ParseResult.clipped`) unless it cut less than
  ``CLIP_TOLERANCE_PX`` (rounding in exporters), which is clipped silently.
- ``crowd``: a COCO ``iscrowd`` region (not one object).

Which pages count as labeled: a page with at least one kept box is labeled; a page whose
every box was rejected is *unlabeled* (its objects exist, but none came through: better
sent to annotators than trained on as empty). A page with no box in the file at all is
unlabeled by default, or labeled-empty with ``images_without_boxes="empty"``; in YOLO an
existing but empty label file is labeled-empty (the YOLO convention for a background page),
a missing one follows ``images_without_boxes``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

CLIP_TOLERANCE_PX = 1.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Names files a YOLO folder may carry, in the order they are looked for.
YOLO_NAMES_FILES = ("data.yaml", "dataset.yaml", "classes.txt", "obj.names", "classes.names")
REASONS = ("malformed", "unknown_class", "zero_area", "outside_image", "crowd")


@dataclass(frozen=True)
class Box:
    """One object: top-left ``x, y`` and size ``w, h`` in pixels, its class name, and the
    model's confidence when the box is a prediction."""

    x: float
    y: float
    w: float
    h: float
    label: str
    score: float | None = None

    @property
    def area(self) -> float:
        return self.w * self.h

    def xyxy(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h


@dataclass(frozen=True)
class ImageBoxes:
    """One page and its boxes (``None``: not labeled yet). ``source_id`` is the image's id
    in the file it came from (COCO), kept so that a written file can reuse it."""

    file_name: str
    width: int
    height: int
    boxes: tuple[Box, ...] | None = None
    source_id: int | str | None = None

    @property
    def labeled(self) -> bool:
        return self.boxes is not None


@dataclass(frozen=True)
class Problem:
    """A box left out (or clipped): where it was and why. ``row`` is the annotation's index
    in the COCO list or the line number (from 1) in a YOLO label file."""

    file_name: str
    row: int
    reason: str
    message: str


@dataclass
class ParseResult:
    """What a file gave: its pages, its classes (in the file's order), the boxes left out
    and the boxes clipped, each with a reason; ``category_ids`` maps class -> COCO id."""

    images: list[ImageBoxes]
    classes: list[str]
    rejected: list[Problem] = field(default_factory=list)
    clipped: list[Problem] = field(default_factory=list)
    category_ids: dict[str, int] = field(default_factory=dict)

    @property
    def n_boxes(self) -> int:
        return sum(len(i.boxes or ()) for i in self.images)


class _Checker:
    """Applies the box rules of the module docstring and collects the problems."""

    def __init__(self, min_inside: float):
        if not 0.0 < min_inside <= 1.0:
            raise ValueError("min_inside must lie in (0, 1]")
        self.min_inside = min_inside
        self.rejected: list[Problem] = []
        self.clipped: list[Problem] = []

    def reject(self, file_name: str, row: int, reason: str, message: str) -> None:
        self.rejected.append(Problem(file_name, row, reason, message))

    def box(self, image: ImageBoxes, row: int, x, y, w, h, label, score=None) -> Box | None:
        if w <= 0 or h <= 0:
            self.reject(image.file_name, row, "zero_area", f"width {w:g} x height {h:g}")
            return None
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(image.width), x + w), min(float(image.height), y + h)
        # What lies within the border's tolerance counts as inside (exporters' rounding).
        t = CLIP_TOLERANCE_PX
        inside = max(0.0, min(image.width + t, x + w) - max(-t, x)) * max(
            0.0, min(image.height + t, y + h) - max(-t, y)
        )
        where = f"[{x:g}, {y:g}, {w:g}, {h:g}] on a {image.width}x{image.height} image"
        if inside < self.min_inside * w * h:
            share = inside / (w * h)
            self.reject(image.file_name, row, "outside_image", f"{where}: {share:.0%} inside")
            return None
        cut = max(x0 - x, y0 - y, x + w - x1, y + h - y1)
        if cut <= 0:
            return Box(x, y, w, h, label, score)  # as given: a round trip stays exact
        if cut > CLIP_TOLERANCE_PX:
            self.clipped.append(
                Problem(image.file_name, row, "clipped", f"{where}: clipped by {cut:g} px")
            )
        return Box(x0, y0, x1 - x0, y1 - y0, label, score)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _decide(boxes: list[Box], had_rows: bool, images_without_boxes: str):
    """The page's boxes by the labeled rule of the module docstring."""
    if boxes:
        return tuple(boxes)
    if had_rows:
        return None
    return () if images_without_boxes == "empty" else None


def _check_option(images_without_boxes: str) -> None:
    if images_without_boxes not in ("unlabeled", "empty"):
        raise ValueError("images_without_boxes is 'unlabeled' or 'empty'")


def parse_coco(
    data: Mapping,
    *,
    min_inside: float = 0.5,
    images_without_boxes: str = "unlabeled",
) -> ParseResult:
    """Reads a COCO instances dict (``images``, ``annotations``, ``categories``).

    Images need ``file_name``, ``width`` and ``height``; an image without them is reported
    (reason ``malformed``, ``row`` -1) and left out with its boxes. Boxes follow the rules
    of the module docstring; classes are the categories' names in the file's order.
    """
    _check_option(images_without_boxes)
    checker = _Checker(min_inside)
    categories = {}
    for category in data.get("categories") or []:
        categories[category["id"]] = str(category["name"])
    images: dict[object, ImageBoxes] = {}
    for entry in data.get("images") or []:
        name = str(entry.get("file_name", entry.get("id", "?")))
        width, height = _number(entry.get("width")), _number(entry.get("height"))
        if "id" not in entry or "file_name" not in entry or not width or not height:
            checker.reject(name, -1, "malformed", "image without id, file_name, width or height")
            continue
        images[entry["id"]] = ImageBoxes(name, int(width), int(height), None, entry["id"])
    kept: dict[object, list[Box]] = {key: [] for key in images}
    had_rows: set[object] = set()
    for row, ann in enumerate(data.get("annotations") or []):
        image = images.get(ann.get("image_id"))
        if image is None:
            checker.reject(
                str(ann.get("image_id")), row, "malformed", "annotation of no image in the file"
            )
            continue
        had_rows.add(ann["image_id"])
        if ann.get("iscrowd"):
            checker.reject(image.file_name, row, "crowd", "iscrowd region, not one object")
            continue
        bbox = ann.get("bbox")
        values = [_number(v) for v in bbox] if isinstance(bbox, list | tuple) else []
        if len(values) != 4 or None in values:
            checker.reject(image.file_name, row, "malformed", f"bbox {bbox!r}")
            continue
        label = categories.get(ann.get("category_id"))
        if label is None:
            checker.reject(
                image.file_name, row, "unknown_class", f"category_id {ann.get('category_id')!r}"
            )
            continue
        score = _number(ann.get("score"))
        box = checker.box(image, row, *values, label, score)
        if box is not None:
            kept[ann["image_id"]].append(box)
    result = [
        replace(image, boxes=_decide(kept[key], key in had_rows, images_without_boxes))
        for key, image in images.items()
    ]
    return ParseResult(
        images=result,
        classes=list(categories.values()),
        rejected=checker.rejected,
        clipped=checker.clipped,
        category_ids={name: cid for cid, name in categories.items()},
    )


def load_coco(path: str | Path, **options) -> ParseResult:
    """:func:`parse_coco` of a json file (``file_name`` stays relative to its folder)."""
    return parse_coco(json.loads(Path(path).read_text()), **options)


def to_coco(
    images: Sequence[ImageBoxes],
    classes: Sequence[str],
    *,
    category_ids: Mapping[str, int] | None = None,
) -> dict:
    """A COCO instances dict of ``images`` (unlabeled ones listed, without boxes).

    Categories follow ``classes``, with ids from ``category_ids`` (e.g. the ids read by
    :func:`parse_coco`) or 1..K. Image ids are the images' ``source_id`` when every one is
    a distinct int, 1..N otherwise. Predicted boxes carry their ``score``.
    """
    ids = dict(category_ids or {})
    missing = [c for c in classes if c not in ids]
    next_id = max(ids.values(), default=0) + 1
    for offset, name in enumerate(missing):
        ids[name] = next_id + offset
    source = [i.source_id for i in images]
    reuse = all(isinstance(s, int) and not isinstance(s, bool) for s in source) and len(
        set(source)
    ) == len(source)
    coco_images, annotations = [], []
    for index, image in enumerate(images):
        image_id = image.source_id if reuse else index + 1
        coco_images.append(
            {
                "id": image_id,
                "file_name": image.file_name,
                "width": image.width,
                "height": image.height,
            }
        )
        for box in image.boxes or ():
            if box.label not in ids:
                raise ValueError(f"box of class {box.label!r}, not in classes")
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": ids[box.label],
                "bbox": [box.x, box.y, box.w, box.h],
                "area": box.w * box.h,
                "iscrowd": 0,
            }
            if box.score is not None:
                ann["score"] = box.score
            annotations.append(ann)
    return {
        "images": coco_images,
        "annotations": annotations,
        "categories": [{"id": ids[c], "name": c} for c in classes],
    }


# --- YOLO ---------------------------------------------------------------------------------


def parse_yolo_names(text: str) -> list[str]:
    """Class names from a YOLO names file: ``data.yaml`` style (``names: [a, b]``, or
    ``names:`` followed by ``- a`` or ``0: a`` lines) or one name per line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^names\s*:\s*(.*)$", line.strip())
        if not match:
            continue
        inline = match.group(1).strip()
        if inline.startswith("["):
            return [_unquote(v) for v in inline.strip("[]").split(",") if v.strip()]
        by_index: dict[int, str] = {}
        listed: list[str] = []
        for follow in lines[i + 1 :]:
            if follow.strip() and not follow[:1].isspace() and not follow.startswith("-"):
                break  # the next top-level key
            item = follow.strip()
            if item.startswith("- "):
                listed.append(_unquote(item[2:]))
            elif re.match(r"^\d+\s*:", item):
                key, value = item.split(":", 1)
                by_index[int(key)] = _unquote(value)
        if by_index:
            return [by_index[k] for k in sorted(by_index)]
        return listed
    if any(re.match(r"^[A-Za-z_]\w*\s*:", line) for line in lines):
        raise ValueError("a yaml names file without a names key")
    return [_unquote(line) for line in lines if line.strip() and not line.startswith("#")]


def _unquote(value: str) -> str:
    return value.split(" #")[0].strip().strip("'\"")


def parse_yolo_labels(
    text: str | None,
    *,
    file_name: str,
    width: int,
    height: int,
    classes: Sequence[str],
    min_inside: float = 0.5,
    images_without_boxes: str = "unlabeled",
) -> tuple[ImageBoxes, list[Problem], list[Problem]]:
    """One page's YOLO label text (``class cx cy w h`` per line, normalised to [0, 1]) as
    an :class:`ImageBoxes`, with the rows rejected and clipped. ``text`` None: no label file.
    """
    _check_option(images_without_boxes)
    checker = _Checker(min_inside)
    image = ImageBoxes(file_name, int(width), int(height))
    if text is None:
        return replace(image, boxes=() if images_without_boxes == "empty" else None), [], []
    boxes, had_rows = [], False
    for row, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        had_rows = True
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) not in (5, 6) or not all(map(math.isfinite, values)):
            checker.reject(file_name, row, "malformed", f"{line.strip()!r}: not class cx cy w h")
            continue
        index = values[0]
        if index != int(index) or not 0 <= index < len(classes):
            checker.reject(file_name, row, "unknown_class", f"class index {parts[0]}")
            continue
        cx, cy, w, h = values[1] * width, values[2] * height, values[3] * width, values[4] * height
        score = values[5] if len(values) == 6 else None
        box = checker.box(image, row, cx - w / 2, cy - h / 2, w, h, classes[int(index)], score)
        if box is not None:
            boxes.append(box)
    # An existing file with no rows is a labeled background page (the YOLO convention).
    decided = tuple(boxes) if boxes or not had_rows else None
    return replace(image, boxes=decided), checker.rejected, checker.clipped


def _label_path(image_path: PurePosixPath) -> PurePosixPath:
    """``images/a/b.png`` -> ``labels/a/b.txt`` (the last ``images`` folder becomes
    ``labels``); an image outside any ``images`` folder has its label beside it."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return PurePosixPath(*parts).with_suffix(".txt")


def parse_yolo_folder(
    root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    min_inside: float = 0.5,
    images_without_boxes: str = "unlabeled",
) -> ParseResult:
    """Reads a YOLO folder: images (under ``images/`` when it exists, anywhere otherwise),
    ``labels/<same path>.txt`` per image, class names from ``classes`` or the first names
    file found in ``root`` (:data:`YOLO_NAMES_FILES`). Image sizes come from the image
    headers (Pillow reads no pixels)."""
    from PIL import Image

    root = Path(root)
    if classes is None:
        names_file = next((root / n for n in YOLO_NAMES_FILES if (root / n).is_file()), None)
        if names_file is None:
            raise ValueError(f"no class names: pass classes or put one of {YOLO_NAMES_FILES}")
        classes = parse_yolo_names(names_file.read_text())
    base = root / "images" if (root / "images").is_dir() else root
    paths = sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    images, rejected, clipped = [], [], []
    for path in paths:
        relative = PurePosixPath(path.relative_to(root).as_posix())
        label_file = root / _label_path(relative)
        with Image.open(path) as im:
            width, height = im.size
        text = label_file.read_text() if label_file.is_file() else None
        image, bad, cut = parse_yolo_labels(
            text,
            file_name=str(relative),
            width=width,
            height=height,
            classes=classes,
            min_inside=min_inside,
            images_without_boxes=images_without_boxes,
        )
        images.append(image)
        rejected += bad
        clipped += cut
    return ParseResult(images, list(classes), rejected, clipped)


def yolo_paths(file_name: str) -> tuple[str, str]:
    """Where :func:`to_yolo` expects a page and its label file in a YOLO folder: the page
    under ``images/`` (its path as is when it is already inside an ``images`` folder)."""
    relative = PurePosixPath(file_name)
    if "images" not in relative.parts:
        relative = PurePosixPath("images") / relative
    return str(relative), str(_label_path(relative))


def to_yolo(images: Sequence[ImageBoxes], classes: Sequence[str]) -> dict[str, str]:
    """The text files of a YOLO folder, by path: ``labels/<image path>.txt`` per labeled
    image (an empty file for a labeled-empty page, none for an unlabeled one), and
    ``data.yaml`` naming the classes. The caller writes them, and the pages where
    :func:`yolo_paths` puts them (or zips both)."""
    index = {name: i for i, name in enumerate(classes)}
    files: dict[str, str] = {}
    for image in images:
        if image.boxes is None:
            continue
        rows = []
        for box in image.boxes:
            if box.label not in index:
                raise ValueError(f"box of class {box.label!r}, not in classes")
            cx = (box.x + box.w / 2) / image.width
            cy = (box.y + box.h / 2) / image.height
            row = f"{index[box.label]} {cx:.6f} {cy:.6f} {box.w / image.width:.6f} "
            row += f"{box.h / image.height:.6f}"
            if box.score is not None:
                row += f" {box.score:.6f}"
            rows.append(row)
        files[yolo_paths(image.file_name)[1]] = "".join(r + "\n" for r in rows)
    names = "".join(f"  {i}: {json.dumps(name)}\n" for i, name in enumerate(classes))
    files["data.yaml"] = f"nc: {len(classes)}\nnames:\n{names}"
    return files

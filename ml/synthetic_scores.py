"""Synthetic printed score pages for detecting tiny objects, deterministic by seed.

Each page holds staves of five lines, each staff opening with a clef and the page's key
signature, then notes (filled or hollow heads, stems, ledger lines), accidentals before
notes, augmentation dots right of a notehead, staccato dots above or below it, rests and
barlines. Symbols are a few pixels (an interline of ~7 px: noteheads ~9x7, dots ~3x3) on
pages of 768x1024 by default, and their counts are as imbalanced as in printed music:
black noteheads are most of the boxes, whole notes, naturals, staccatos and bass clefs
are rare. Three pairs of classes look identical and differ only by context:

- ``keySharp`` / ``accidentalSharp`` and ``keyFlat`` / ``accidentalFlat``: the same glyph,
  right after the clef (key signature) or right before a notehead (accidental);
- ``augmentationDot`` / ``staccatoDot``: the same dot, right of a notehead in a staff space
  or above/below it on the side away from the stem;
- ``restHalf`` / ``restWhole``: the same small block, on the middle line or under the fourth.

A "scanned" page is the same kind of page seen through a scanner (a small rotation, blur,
sensor noise, specks, grey paper and uneven light), for covariate shift. Pages are written
with a COCO instances file (:func:`make_score_pages`), or drawn in memory
(:func:`render_page`). ``python -m ml.synthetic_scores DIR`` writes a set and prints the
counts per class and the time per page.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Category order of every file written (COCO id = index + 1), stable across page sets so
# that two sets can be merged or compared.
CLASSES = (
    "gClef",
    "fClef",
    "keySharp",
    "keyFlat",
    "noteheadBlack",
    "noteheadHalf",
    "noteheadWhole",
    "accidentalSharp",
    "accidentalFlat",
    "accidentalNatural",
    "augmentationDot",
    "staccatoDot",
    "restQuarter",
    "restEighth",
    "restHalf",
    "restWhole",
    "barline",
)
# Pairs that share a glyph and differ only by where they stand.
CONTEXT_PAIRS = (
    ("keySharp", "accidentalSharp"),
    ("keyFlat", "accidentalFlat"),
    ("augmentationDot", "staccatoDot"),
    ("restHalf", "restWhole"),
)
STEM_CLASS = "stem"  # annotated only with annotate_stems=True

# Drawn at this many times the page size, then reduced: anti-aliased edges on tiny glyphs.
_SUPERSAMPLE = 2
# Staff positions (0 = bottom line, one step = half an interline) of the key signature's
# accidentals in a treble staff; a bass staff has them two steps lower.
_KEY_SHARP_POSITIONS = (8, 5, 9, 6, 3, 7, 4)
_KEY_FLAT_POSITIONS = (4, 7, 3, 6, 2, 5, 1)
# How often things happen: what makes the classes imbalanced.
_P_BASS_CLEF = 0.15
_P_REST = 0.16
_REST_KINDS = (("restQuarter", 0.55), ("restEighth", 0.3), ("restHalf", 0.1), ("restWhole", 0.05))
_NOTE_KINDS = (("noteheadBlack", 0.8), ("noteheadHalf", 0.16), ("noteheadWhole", 0.04))
_P_ACCIDENTAL = 0.1
_ACCIDENTALS = (("accidentalSharp", 0.5), ("accidentalFlat", 0.38), ("accidentalNatural", 0.12))
_P_AUGMENTATION_DOT = 0.1
_P_STACCATO = 0.04
# Key signatures: number of sharps (>0) or flats (<0) of a page, and their odds.
_KEYS = np.arange(-4, 5)
_KEY_ODDS = np.array([1, 2, 3, 4, 3, 4, 3, 2, 1], float)


@dataclass(frozen=True)
class ScoreBox:
    """One symbol on a page: its class and box in page pixels (x, y of the top-left)."""

    label: str
    x: float
    y: float
    w: float
    h: float


@dataclass
class ScorePage:
    """A drawn page: the greyscale image, its boxes, its staves (top and bottom line y)."""

    image: Image.Image
    boxes: list[ScoreBox]
    staves: list[tuple[float, float]] = field(default_factory=list)
    scanned: bool = False
    interline: float = 0.0


class _Pen:
    """Draws on the supersampled canvas and records the extent of what the current symbol
    drew, so that every box is exactly the ink of its symbol."""

    def __init__(self, draw: ImageDraw.ImageDraw):
        self.draw = draw
        self.extent: list[float] | None = None

    def _grow(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.extent is None:
            self.extent = [x0, y0, x1, y1]
        else:
            e = self.extent
            e[0], e[1], e[2], e[3] = min(e[0], x0), min(e[1], y0), max(e[2], x1), max(e[3], y1)

    def line(self, points, width: float, record: bool = True) -> None:
        w = max(1, round(width * _SUPERSAMPLE))
        pts = [(x * _SUPERSAMPLE, y * _SUPERSAMPLE) for x, y in points]
        self.draw.line(pts, fill=0, width=w, joint="curve")
        if record:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            half = w / _SUPERSAMPLE / 2
            self._grow(min(xs) - half, min(ys) - half, max(xs) + half, max(ys) + half)

    def ellipse(self, x0, y0, x1, y1, *, fill: bool, width: float = 1.0) -> None:
        box = [x0 * _SUPERSAMPLE, y0 * _SUPERSAMPLE, x1 * _SUPERSAMPLE, y1 * _SUPERSAMPLE]
        if fill:
            self.draw.ellipse(box, fill=0)
        else:
            self.draw.ellipse(box, outline=0, width=max(1, round(width * _SUPERSAMPLE)))
        self._grow(x0, y0, x1, y1)

    def polygon(self, points) -> None:
        self.draw.polygon([(x * _SUPERSAMPLE, y * _SUPERSAMPLE) for x, y in points], fill=0)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        self._grow(min(xs), min(ys), max(xs), max(ys))

    def arc(self, x0, y0, x1, y1, start: float, end: float, width: float) -> None:
        w = max(1, round(width * _SUPERSAMPLE))
        box = [x0 * _SUPERSAMPLE, y0 * _SUPERSAMPLE, x1 * _SUPERSAMPLE, y1 * _SUPERSAMPLE]
        self.draw.arc(box, start, end, fill=0, width=w)
        # The extent of the arc's sweep only, sampled (exact enough at these sizes).
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        angles = np.radians(np.linspace(start, end, 24))
        xs, ys = cx + rx * np.cos(angles), cy + ry * np.sin(angles)
        inward = w / _SUPERSAMPLE
        self._grow(
            max(x0, xs.min() - inward / 2),
            max(y0, ys.min() - inward / 2),
            min(x1, xs.max() + inward / 2),
            min(y1, ys.max() + inward / 2),
        )

    def take(self) -> tuple[float, float, float, float]:
        """The recorded extent (x0, y0, x1, y1) of the symbol just drawn, and a fresh start."""
        extent, self.extent = self.extent, None
        assert extent is not None, "a symbol drew nothing"
        return extent[0], extent[1], extent[2], extent[3]


def _pick(rng: np.random.Generator, options) -> str:
    names = [name for name, _ in options]
    odds = np.array([p for _, p in options], float)
    return names[int(rng.choice(len(names), p=odds / odds.sum()))]


class _Staff:
    """Geometry of one staff: y of a staff position, and its symbols' sizes."""

    def __init__(self, top: float, s: float, left: float, right: float, clef: str):
        self.top, self.s, self.left, self.right, self.clef = top, s, left, right, clef
        self.bottom = top + 4 * s

    def y(self, position: float) -> float:
        return self.bottom - position * self.s / 2


class _PageDrawer:
    def __init__(self, pen: _Pen, rng: np.random.Generator, annotate_stems: bool):
        self.pen, self.rng, self.annotate_stems = pen, rng, annotate_stems
        self.boxes: list[ScoreBox] = []
        self.key = 0  # sharps (>0) or flats (<0) of the key signature

    def _record(self, label: str) -> None:
        x0, y0, x1, y1 = self.pen.take()
        self.boxes.append(ScoreBox(label, x0, y0, x1 - x0, y1 - y0))

    # --- glyphs -------------------------------------------------------------------------------
    # Each draws one symbol around (x = its left edge or centre, y = its staff position's y)
    # and returns its width; the same function draws both classes of a context pair.

    def sharp(self, x: float, y: float, s: float) -> float:
        w, h, thin, thick = 0.95 * s, 2.7 * s, 0.13 * s, 0.36 * s
        for dx in (0.28 * w, 0.72 * w):  # verticals, the right one a little higher
            lift = 0.12 * s if dx > w / 2 else 0.0
            self.pen.line([(x + dx, y - h / 2 - lift), (x + dx, y + h / 2 - lift)], thin)
        for dy in (-0.42 * s, 0.42 * s):  # thick bars rising to the right
            self.pen.polygon(
                [
                    (x, y + dy + 0.12 * s),
                    (x + w, y + dy - 0.12 * s),
                    (x + w, y + dy - 0.12 * s - thick),
                    (x, y + dy + 0.12 * s - thick),
                ]
            )
        return w

    def flat(self, x: float, y: float, s: float) -> float:
        w = 0.8 * s
        self.pen.line([(x + 0.1 * s, y - 1.9 * s), (x + 0.1 * s, y + 0.55 * s)], 0.13 * s)
        self.pen.arc(x - 0.55 * w, y - 0.45 * s, x + w, y + 0.55 * s, 270, 450, 0.3 * s)
        return w

    def natural(self, x: float, y: float, s: float) -> float:
        w, thin = 0.65 * s, 0.13 * s
        self.pen.line([(x, y - 1.35 * s), (x, y + 0.5 * s)], thin)
        self.pen.line([(x + w, y - 0.5 * s), (x + w, y + 1.35 * s)], thin)
        for dy in (-0.45 * s, 0.45 * s):
            self.pen.polygon(
                [
                    (x, y + dy + 0.1 * s),
                    (x + w, y + dy - 0.1 * s),
                    (x + w, y + dy - 0.4 * s),
                    (x, y + dy - 0.2 * s),
                ]
            )
        return w

    def dot(self, cx: float, cy: float, s: float) -> None:
        r = max(1.5, 0.24 * s)
        self.pen.ellipse(cx - r, cy - r, cx + r, cy + r, fill=True)

    def g_clef(self, x: float, st: _Staff) -> float:
        s = st.s
        cx = x + 1.1 * s
        self.pen.line([(cx + 0.15 * s, st.y(10.5)), (cx - 0.1 * s, st.y(-2.2))], 0.16 * s)
        self.pen.arc(cx - 1.05 * s, st.y(4.2), cx + 1.05 * s, st.y(0.0), 0, 360, 0.3 * s)
        self.pen.arc(cx - 0.2 * s, st.y(10.8), cx + 0.75 * s, st.y(7.0), 180, 450, 0.18 * s)
        self.pen.ellipse(cx - 0.75 * s, st.y(-1.6), cx - 0.05 * s, st.y(-3.0), fill=True)
        return 2.2 * s

    def f_clef(self, x: float, st: _Staff) -> float:
        s = st.s
        self.pen.ellipse(x, st.y(6.9), x + 0.75 * s, st.y(5.3), fill=True)
        self.pen.arc(x - 0.1 * s, st.y(8.0), x + 2.0 * s, st.y(0.6), 200, 430, 0.3 * s)
        for position in (7, 5):
            self.dot(x + 2.45 * s, st.y(position), s * 0.9)
        return 2.7 * s

    def notehead(self, x: float, y: float, s: float, kind: str) -> float:
        if kind == "noteheadWhole":
            w = 1.55 * s
            self.pen.ellipse(x, y - 0.5 * s, x + w, y + 0.5 * s, fill=False, width=0.32 * s)
        else:
            w = 1.25 * s
            filled = kind == "noteheadBlack"
            self.pen.ellipse(x, y - 0.5 * s, x + w, y + 0.5 * s, fill=filled, width=0.22 * s)
        return w

    # --- staff contents -----------------------------------------------------------------------

    def ledger_lines(self, x: float, w: float, position: int, st: _Staff) -> None:
        s = st.s
        for ledger in range(-2, position - 1, -2):
            self.pen.line(
                [(x - 0.3 * s, st.y(ledger)), (x + w + 0.3 * s, st.y(ledger))], 0.12 * s, False
            )
        for ledger in range(10, position + 1, 2):
            self.pen.line(
                [(x - 0.3 * s, st.y(ledger)), (x + w + 0.3 * s, st.y(ledger))], 0.12 * s, False
            )

    def note(self, x: float, st: _Staff) -> float:
        """A note, with what may come with it; returns the x where the next event may start."""
        rng, s = self.rng, st.s
        position = int(rng.integers(-3, 12))
        kind = _pick(rng, _NOTE_KINDS)
        y = st.y(position)
        if rng.random() < _P_ACCIDENTAL:
            accidental = _pick(rng, _ACCIDENTALS)
            glyph = {
                "accidentalSharp": self.sharp,
                "accidentalFlat": self.flat,
                "accidentalNatural": self.natural,
            }[accidental]
            x += glyph(x, y, s) + 0.35 * s
            self._record(accidental)
        w = self.notehead(x, y, s, kind)
        self._record(kind)
        self.ledger_lines(x, w, position, st)
        stem_up = position < 4
        if kind != "noteheadWhole":
            stem_x = x + w - 0.06 * s if stem_up else x + 0.06 * s
            tip = y - 3.5 * s if stem_up else y + 3.5 * s
            self.pen.line([(stem_x, y), (stem_x, tip)], 0.13 * s, record=self.annotate_stems)
            if self.annotate_stems:
                self._record(STEM_CLASS)
        right = x + w
        if kind != "noteheadWhole" and rng.random() < _P_AUGMENTATION_DOT:
            # In the space of the note, or the space above when the note sits on a line.
            space = position if position % 2 else position + 1
            self.dot(x + w + 0.55 * s, st.y(space), s)
            self._record("augmentationDot")
            right = x + w + 0.9 * s
        if kind == "noteheadBlack" and rng.random() < _P_STACCATO:
            # On the notehead's side away from the stem, in the nearest space.
            step = 3 if position % 2 == 0 else 2
            self.dot(x + w / 2, st.y(position - step if stem_up else position + step), s)
            self._record("staccatoDot")
        return right

    def rest(self, x: float, st: _Staff) -> float:
        s, kind = st.s, _pick(self.rng, _REST_KINDS)
        if kind == "restQuarter":
            y0 = st.y(7)
            pts = [
                (x + 0.25 * s, y0),
                (x + 0.95 * s, y0 + 0.85 * s),
                (x + 0.3 * s, y0 + 1.5 * s),
                (x + 0.95 * s, y0 + 2.3 * s),
                (x + 0.35 * s, y0 + 2.2 * s),
                (x + 0.6 * s, y0 + 2.85 * s),
            ]
            self.pen.line(pts, 0.26 * s)
            w = 1.0 * s
        elif kind == "restEighth":
            self.pen.ellipse(x, st.y(5.9), x + 0.5 * s, st.y(4.9), fill=True)
            self.pen.line([(x + 0.3 * s, st.y(5.0)), (x + 0.95 * s, st.y(5.4))], 0.16 * s)
            self.pen.line([(x + 0.95 * s, st.y(5.4)), (x + 0.45 * s, st.y(2.0))], 0.16 * s)
            w = 1.0 * s
        else:  # half rest on the middle line, whole rest under the fourth line
            w = 1.2 * s
            line_y = st.y(4) if kind == "restHalf" else st.y(6)
            y0, y1 = (
                (line_y - 0.5 * s, line_y) if kind == "restHalf" else (line_y, line_y + 0.5 * s)
            )
            self.pen.polygon([(x, y0), (x + w, y0), (x + w, y1), (x, y1)])
        self._record(kind)
        return x + w

    def staff(self, st: _Staff) -> None:
        rng, s = self.rng, st.s
        for line in range(5):
            y = st.top + line * s
            self.pen.line([(st.left, y), (st.right, y)], 0.12 * s, record=False)
        x = st.left + 0.4 * s
        if st.clef == "gClef":
            x += self.g_clef(x, st)
        else:
            x += self.f_clef(x, st)
        self._record(st.clef)
        x += 0.6 * s
        shift = 0 if st.clef == "gClef" else -2
        for i in range(abs(self.key)):
            if self.key > 0:
                x += self.sharp(x, st.y(_KEY_SHARP_POSITIONS[i] + shift), s) + 0.15 * s
                self._record("keySharp")
            else:
                x += self.flat(x, st.y(_KEY_FLAT_POSITIONS[i] + shift), s) + 0.2 * s
                self._record("keyFlat")
        x += 1.2 * s
        events_in_bar, bar_length = 0, int(rng.integers(3, 7))
        # Room for the widest event (accidental + whole note + dot) before the right end.
        while x + 5 * s < st.right:
            if events_in_bar == bar_length:
                self.pen.line([(x, st.top), (x, st.bottom)], 0.16 * s)
                self._record("barline")
                x += 1.3 * s
                events_in_bar, bar_length = 0, int(rng.integers(3, 7))
                continue
            x = self.rest(x, st) if rng.random() < _P_REST else self.note(x, st)
            x += rng.uniform(1.3, 2.6) * s
            events_in_bar += 1
        self.pen.line([(st.right, st.top), (st.right, st.bottom)], 0.16 * s)
        self._record("barline")


def _scan(image: Image.Image, boxes: list[ScoreBox], rng: np.random.Generator):
    """The page as a scanner sees it: rotated a little (boxes follow the ink), blurred, grey
    paper under uneven light, sensor noise and specks."""
    width, height = image.size
    angle = float(rng.uniform(-1.5, 1.5))
    image = image.rotate(angle, resample=Image.BICUBIC, fillcolor=255)
    # PIL turns the picture counter-clockwise by `angle` about the centre: the same for the
    # corners of every box, whose axis-aligned hull becomes the new box.
    t = math.radians(angle)
    cos, sin, cx, cy = math.cos(t), math.sin(t), width / 2, height / 2
    turned = []
    for b in boxes:
        xs = np.array([b.x, b.x + b.w, b.x, b.x + b.w]) - cx
        ys = np.array([b.y, b.y, b.y + b.h, b.y + b.h]) - cy
        nx, ny = cx + xs * cos + ys * sin, cy - xs * sin + ys * cos
        x0, y0 = max(0.0, nx.min()), max(0.0, ny.min())
        x1, y1 = min(float(width), nx.max()), min(float(height), ny.max())
        turned.append(ScoreBox(b.label, x0, y0, x1 - x0, y1 - y0))
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.35, 0.9))))
    ink = np.asarray(image, dtype=np.float32) / 255.0  # 1 = paper, 0 = ink
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    gradient = (xx / width - 0.5) * direction[0] + (yy / height - 0.5) * direction[1]
    vignette = ((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2).astype(np.float32)
    paper = rng.uniform(215, 245) * (
        1 - rng.uniform(0.1, 0.3) * gradient - rng.uniform(0.05, 0.25) * vignette
    )
    dark = rng.uniform(25, 70)
    page = dark + (paper - dark) * ink
    page += rng.normal(0, rng.uniform(3, 9), page.shape).astype(np.float32)
    # Specks of dust, a pixel or two: dark points that are neither dot class.
    n_specks = int(rng.integers(20, 80))
    sy, sx = rng.integers(0, height - 2, n_specks), rng.integers(0, width - 2, n_specks)
    for y, x in zip(sy, sx, strict=True):
        page[y : y + 1 + int(rng.integers(0, 2)), x : x + 1 + int(rng.integers(0, 2))] = dark
    return Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "L"), turned


def render_page(
    *,
    seed: int | tuple[int, ...] = 0,
    width: int = 768,
    height: int = 1024,
    scanned: bool = False,
    interline: tuple[float, float] = (6.5, 8.0),
    annotate_stems: bool = False,
) -> ScorePage:
    """One page drawn in memory: a greyscale image and its boxes in page pixels.

    ``interline`` is the range the page's staff-line spacing is drawn from (symbol sizes
    follow it: a notehead is ~1.25 interlines wide, a dot ~0.5). Stems are drawn always and
    boxed as :data:`STEM_CLASS` only with ``annotate_stems``. The same ``seed`` draws the
    same page; ``scanned`` draws the same music, then scans it.
    """
    rng = np.random.default_rng(seed)
    s = float(rng.uniform(*interline))
    if width < 60 * s or height < 20 * s:
        raise ValueError(f"a page of {width}x{height} is too small for an interline of {s:.1f}")
    canvas = Image.new("L", (width * _SUPERSAMPLE, height * _SUPERSAMPLE), 255)
    drawer = _PageDrawer(_Pen(ImageDraw.Draw(canvas)), rng, annotate_stems)
    drawer.key = int(rng.choice(_KEYS, p=_KEY_ODDS / _KEY_ODDS.sum()))
    margin_x, margin_y = rng.uniform(0.04, 0.07) * width, rng.uniform(0.05, 0.08) * height
    # A staff's symbols reach ~3 interlines past its outer lines: staves 10-12 apart.
    pitch = 4 * s + rng.uniform(6.5, 8.0) * s
    top = margin_y + 3 * s
    staves = []
    while top + 4 * s + 3 * s <= height - margin_y:
        clef = "fClef" if rng.random() < _P_BASS_CLEF else "gClef"
        staff = _Staff(top, s, margin_x, width - margin_x, clef)
        drawer.staff(staff)
        staves.append((staff.top, staff.bottom))
        top += pitch
    image = canvas.resize((width, height), Image.BOX)
    boxes = [_clip(b, width, height) for b in drawer.boxes]
    if scanned:
        image, boxes = _scan(image, boxes, rng)
    return ScorePage(image, boxes, staves, scanned, s)


def _clip(b: ScoreBox, width: int, height: int) -> ScoreBox:
    x0, y0 = max(0.0, b.x), max(0.0, b.y)
    x1, y1 = min(float(width), b.x + b.w), min(float(height), b.y + b.h)
    return ScoreBox(b.label, x0, y0, x1 - x0, y1 - y0)


def make_score_pages(
    out_dir: str | Path,
    *,
    pages: int = 20,
    width: int = 768,
    height: int = 1024,
    scanned_fraction: float = 0.0,
    interline: tuple[float, float] = (6.5, 8.0),
    annotate_stems: bool = False,
    seed: int = 0,
) -> dict:
    """Writes ``pages`` score pages under ``out_dir/images/`` and their boxes as COCO
    instances in ``out_dir/annotations.json``; returns a summary of what was made.

    The last ``round(scanned_fraction * pages)`` pages are scanned (see :func:`render_page`),
    the others clean; a scanned page never repeats the music of a clean page of the same
    ``seed`` (the shift case trains on one set and pools the other). COCO images carry
    ``file_name`` relative to ``out_dir``, ``width``, ``height``, and two extra keys readers
    may ignore: ``scanned`` and ``staves`` ([top, bottom] line y per staff). Boxes are
    ``[x, y, w, h]`` in pixels, categories are :data:`CLASSES` (ids 1..K, every class
    listed even when a set has none of it). The summary holds ``root``, ``annotations``,
    ``n_images``, ``n_boxes``, ``counts`` (boxes per class), ``scanned`` (file names),
    ``classes`` and ``seconds_per_page``. The same arguments write the same bytes.
    """
    if pages < 1:
        raise ValueError("need at least one page")
    if not 0.0 <= scanned_fraction <= 1.0:
        raise ValueError("scanned_fraction must lie in [0, 1]")
    root = Path(out_dir)
    (root / "images").mkdir(parents=True, exist_ok=True)
    classes = CLASSES + ((STEM_CLASS,) if annotate_stems else ())
    category_id = {name: i + 1 for i, name in enumerate(classes)}
    n_scanned = int(round(scanned_fraction * pages))
    images, annotations, scanned_names = [], [], []
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    for index in range(pages):
        scanned = index >= pages - n_scanned
        page = render_page(
            # Scanned pages draw other music than the clean page of the same index: a clean
            # set and a scanned set of one seed share no page.
            seed=(seed, 29 if scanned else 23, index),
            width=width,
            height=height,
            scanned=scanned,
            interline=interline,
            annotate_stems=annotate_stems,
        )
        file_name = f"images/page_{index:04d}.png"
        page.image.save(root / file_name, optimize=False)
        images.append(
            {
                "id": index + 1,
                "file_name": file_name,
                "width": width,
                "height": height,
                "scanned": scanned,
                "staves": [[round(t, 2), round(b, 2)] for t, b in page.staves],
            }
        )
        if scanned:
            scanned_names.append(file_name)
        for box in page.boxes:
            bbox = [round(box.x, 2), round(box.y, 2), round(box.w, 2), round(box.h, 2)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": category_id[box.label],
                    "bbox": bbox,
                    "area": round(bbox[2] * bbox[3], 2),
                    "iscrowd": 0,
                }
            )
            counts[box.label] += 1
    seconds = time.perf_counter() - started
    coco = {
        "info": {"description": "Loupe synthetic score pages", "seed": seed},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": category_id[c], "name": c} for c in classes],
    }
    annotations_path = root / "annotations.json"
    annotations_path.write_text(json.dumps(coco))
    return {
        "root": str(root),
        "annotations": str(annotations_path),
        "n_images": pages,
        "n_boxes": len(annotations),
        "counts": {c: counts[c] for c in classes},
        "scanned": scanned_names,
        "classes": list(classes),
        "seconds_per_page": seconds / pages,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--scanned-fraction", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    summary = make_score_pages(
        args.out_dir,
        pages=args.pages,
        width=args.width,
        height=args.height,
        scanned_fraction=args.scanned_fraction,
        seed=args.seed,
    )
    print(
        f"{summary['n_images']} pages ({len(summary['scanned'])} scanned), "
        f"{summary['n_boxes']} boxes, {summary['seconds_per_page'] * 1000:.0f} ms per page "
        f"(drawn and written)"
    )
    print(f"{'class':<20}{'boxes':>8}{'share':>8}{'per page':>10}")
    for name, n in sorted(summary["counts"].items(), key=lambda kv: -kv[1]):
        share = n / max(1, summary["n_boxes"])
        print(f"{name:<20}{n:>8}{share:>8.1%}{n / summary['n_images']:>10.1f}")


if __name__ == "__main__":
    main()

"""Tiny pages with known objects for the detector's tests: dark symbols of a few pixels on
white paper, three classes, one of which only its neighbourhood names.

- ``square``: a filled 6×6 square;
- ``dot_after``: a 3×3 dot two pixels right of a square (an augmentation dot);
- ``dot_alone``: the same 3×3 dot with nothing near it (a staccato dot).

Squares are the most common; the two dots are the same glyph, told apart by context only.
"""

from __future__ import annotations

import numpy as np

CLASSES = ["square", "dot_after", "dot_alone"]


def draw_pages(
    n: int, *, size: int = 128, width: int | None = None, seed: int = 0, max_objects: int = 12
):
    """``(pages (n, 1, size, width), targets)``: each target ``{"boxes", "labels"}``,
    deterministic by ``seed``."""
    rng = np.random.default_rng(seed)
    width = width or size
    pages, targets = [], []
    for _ in range(n):
        page = np.ones((size, width), np.float32)
        boxes, labels, taken = [], [], []

        def free(x0, y0, x1, y1, pad=8, taken=taken):
            return all(
                x1 + pad <= a or b + pad <= x0 or y1 + pad <= c or d + pad <= y0
                for a, c, b, d in taken
            )

        for _ in range(6 * max_objects):
            if len(labels) >= max_objects:
                break
            kind = rng.choice(3, p=[0.45, 0.3, 0.25])
            x, y = int(rng.integers(2, width - 16)), int(rng.integers(2, size - 8))
            if kind == 2:
                if free(x, y, x + 3, y + 3):
                    page[y : y + 3, x : x + 3] = 0.0
                    taken.append((x, y, x + 3, y + 3))
                    boxes.append([x, y, x + 3, y + 3])
                    labels.append(2)
                continue
            with_dot = kind == 1
            right = x + 6 + (5 if with_dot else 0)
            if not free(x, y, right, y + 6):
                continue
            page[y : y + 6, x : x + 6] = 0.0
            taken.append((x, y, right, y + 6))
            boxes.append([x, y, x + 6, y + 6])
            labels.append(0)
            if with_dot:
                page[y + 2 : y + 5, x + 8 : x + 11] = 0.0
                boxes.append([x + 8, y + 2, x + 11, y + 5])
                labels.append(1)
        pages.append(page[None])
        targets.append(
            {
                "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                "labels": np.asarray(labels, np.int64),
            }
        )
    return np.stack(pages), targets

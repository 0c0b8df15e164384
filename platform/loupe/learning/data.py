"""Turns items into tensors for the ml library: decoded from media storage with Pillow,
rescaled to the project's image size."""

from collections.abc import Callable, Sequence

import numpy as np
import torch
from django.core.files.storage import default_storage

from ml.data import load_image


def _local_path(name: str) -> str:
    # Workers read media from a local or mounted folder (shared with Label Studio).
    return default_storage.path(name)


def item_tensors(
    file_names: Sequence[str],
    *,
    image_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Decodes the files into one float tensor (n, 3, size, size)."""
    out = torch.empty((len(file_names), 3, image_size, image_size), dtype=torch.float32)
    for i, name in enumerate(file_names):
        out[i] = load_image(_local_path(name), image_size=image_size)
        if progress and (i + 1) % 256 == 0:
            progress(i + 1, len(file_names))
    return out


def thin_curve(points: list[tuple[int, float]], limit: int = 300) -> list[list[float]]:
    """At most `limit` evenly spread [step, loss] points (the last one always kept)."""
    if len(points) <= limit:
        return [list(p) for p in points]
    picks = np.linspace(0, len(points) - 1, limit).round().astype(int)
    return [list(points[i]) for i in picks]

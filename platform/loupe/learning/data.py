"""Turns items into tensors for the ml library: decoded from media storage with Pillow,
rescaled to the project's image size."""

from collections.abc import Callable, Sequence

import numpy as np
import torch
from django.core.files.storage import default_storage

from ml.data import batch_to_tensor, load_image_array


def _local_path(name: str) -> str:
    # Workers read media from a local or mounted folder (shared with Label Studio).
    return default_storage.path(name)


def item_tensors(
    file_names: Sequence[str],
    *,
    image_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Decodes the files into one float tensor (n, 3, size, size): pixels are gathered as
    uint8 and converted once, which costs half of a tensor per image."""
    pixels = np.empty((len(file_names), image_size, image_size, 3), dtype=np.uint8)
    for i, name in enumerate(file_names):
        pixels[i] = load_image_array(_local_path(name), image_size=image_size)
        if progress and (i + 1) % 256 == 0:
            progress(i + 1, len(file_names))
    return batch_to_tensor(pixels)


def thin_curve(points: list[tuple[int, float]], limit: int = 300) -> list[list[float]]:
    """At most `limit` evenly spread [step, loss] points (the last one always kept)."""
    if len(points) <= limit:
        return [list(p) for p in points]
    picks = np.linspace(0, len(points) - 1, limit).round().astype(int)
    return [list(points[i]) for i in picks]

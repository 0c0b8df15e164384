"""Turns items into tensors for the ml library: decoded from media storage with Pillow,
rescaled to the project's image size, or read back from the pixel cache when an earlier
pass decoded them already."""

from collections.abc import Callable, Sequence

import numpy as np
import torch
from django.core.files.storage import default_storage

from loupe.learning.pixel_cache import PixelCache, pixel_cache_root
from ml.data import batch_to_tensor, load_image_array


def _local_path(name: str) -> str:
    # Workers read media from a local or mounted folder (shared with Label Studio).
    return default_storage.path(name)


def item_tensors(
    file_names: Sequence[str],
    *,
    image_size: int,
    progress: Callable[[int, int], None] | None = None,
    cache_keys: Sequence[str] | None = None,
) -> torch.Tensor:
    """Decodes the files into one float tensor (n, 3, size, size): pixels are gathered as
    uint8 and converted once, which costs half of a tensor per image.

    With ``cache_keys`` (the items' sha256, one per file) pixels decoded by an earlier call
    are read from the pixel cache, and the ones decoded now are kept there."""
    pixels = np.empty((len(file_names), image_size, image_size, 3), dtype=np.uint8)
    root = pixel_cache_root() if cache_keys is not None else None
    cache = PixelCache(root, image_size=image_size) if root is not None else None
    misses = cache.load_many(cache_keys, pixels) if cache else range(len(file_names))
    for done, i in enumerate(misses, start=1):
        pixels[i] = load_image_array(_local_path(file_names[i]), image_size=image_size)
        if cache is not None:
            cache.store(cache_keys[i], pixels[i])
        if progress and done % 256 == 0:
            progress(done, len(misses))
    return batch_to_tensor(pixels)


def thin_curve(points: list[tuple[int, float]], limit: int = 300) -> list[list[float]]:
    """At most `limit` evenly spread [step, loss] points (the last one always kept)."""
    if len(points) <= limit:
        return [list(p) for p in points]
    picks = np.linspace(0, len(points) - 1, limit).round().astype(int)
    return [list(points[i]) for i in picks]

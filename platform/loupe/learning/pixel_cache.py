"""Decoded pixels of item images, kept on disk at a model's input size.

Item files never change (they are named by their content's sha256), and the pool is scored
again at every loop round, so decoding a PNG or JPEG each time is wasted work: the first
scoring keeps each item's uint8 pixels in a small file keyed by (sha256, size, mode), and
later scorings read them back instead of decoding.

Each file carries its shape and a CRC32 of its pixels: a missing, partial or corrupt file
is a miss (the image is decoded again and the file rewritten), never an error and never
wrong pixels. Files are written under a temporary name and renamed, so two worker
processes writing the same item at once leave one whole file.
"""

import contextlib
import logging
import os
import re
import socket
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

# Bump when decoding changes (resize filter, mode conversion...): older files are ignored.
FORMAT_VERSION = 1
_MAGIC = b"LPX1"
_HEADER = struct.Struct("<4sHHHI")  # magic, height, width, channels, crc32 of the pixels
_SHA256 = re.compile("[0-9a-f]{64}")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
_HOST = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())


def pixel_cache_root() -> Path | None:
    """The cache folder (LOUPE_PIXEL_CACHE_DIR, default <media>/cache/pixels), or None when
    LOUPE_PIXEL_CACHE is off."""
    if not settings.LOUPE_PIXEL_CACHE:
        return None
    configured = settings.LOUPE_PIXEL_CACHE_DIR
    return Path(configured) if configured else Path(settings.MEDIA_ROOT) / "cache" / "pixels"


class PixelCache:
    """uint8 pixels ``(H, W, C)`` of images at one size and Pillow mode, keyed by sha256."""

    def __init__(self, root: str | Path, *, image_size: int, mode: str = "RGB") -> None:
        self.channels = 1 if mode == "L" else len(mode)
        self.shape = (image_size, image_size, self.channels)
        self.folder = Path(root) / f"v{FORMAT_VERSION}" / f"{mode}-{image_size}"
        self._prefix = str(self.folder) + os.sep
        self._size = _HEADER.size + image_size * image_size * self.channels
        self._write_failed = False

    def path(self, key: str) -> Path | None:
        """Where the pixels of the image with this sha256 live; None for a key that is not
        a sha256 (it could name a path outside the cache)."""
        name = self._name(key)
        return Path(name) if name else None

    def _name(self, key: str) -> str | None:
        # A plain string: scoring reads thousands of these per chunk.
        if not _SHA256.fullmatch(key):
            return None
        return f"{self._prefix}{key[:2]}{os.sep}{key}"

    def load_into(self, key: str, out: np.ndarray) -> bool:
        """Copies the cached pixels into ``out`` and says True; False when there are none
        (missing, unreadable, partial or corrupt), leaving ``out`` untouched."""
        name = self._name(key)
        if name is None:
            return False
        try:
            handle = os.open(name, os.O_RDONLY)
        except OSError:
            return False
        try:
            data = os.read(handle, self._size + 1)
        except OSError:
            return False
        finally:
            os.close(handle)
        if len(data) != self._size:
            return False
        magic, h, w, c, crc = _HEADER.unpack_from(data)
        pixels = memoryview(data)[_HEADER.size :]
        if magic != _MAGIC or (h, w, c) != self.shape or zlib.crc32(pixels) != crc:
            return False
        out[...] = np.frombuffer(pixels, dtype=np.uint8).reshape(self.shape)
        return True

    def store(self, key: str, pixels: np.ndarray) -> None:
        """Keeps the pixels; a failure (disk full, read-only folder) is logged once and the
        cache just stays cold."""
        name = self._name(key)
        if name is None or pixels.shape != self.shape or pixels.dtype != np.uint8:
            return
        body = np.ascontiguousarray(pixels).tobytes()
        data = _HEADER.pack(_MAGIC, *self.shape, zlib.crc32(body)) + body
        # Unique per machine, process and thread: concurrent writers (workers on several
        # machines may share the folder) never share a temporary file.
        temporary = f"{name}.{_HOST}-{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            try:
                handle = os.open(temporary, _CREATE, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(name), exist_ok=True)
                handle = os.open(temporary, _CREATE, 0o644)
            try:
                written = os.write(handle, data)
            finally:
                os.close(handle)
            if written == len(data):
                os.replace(temporary, name)
                return
        except OSError as exc:
            if not self._write_failed:
                logger.warning("pixel cache %s is not writable: %s", self.folder, exc)
                self._write_failed = True
        with contextlib.suppress(OSError):
            os.unlink(temporary)

    def load_many(self, keys: Sequence[str], out: np.ndarray) -> list[int]:
        """Fills ``out[i]`` for each cached ``keys[i]``; returns the indices that missed."""
        return [i for i, key in enumerate(keys) if not self.load_into(key, out[i])]

"""Content-addressed media storage for item files: items/<sha[:2]>/<sha><ext>.

On the local filesystem files are written directly (temporary name, then an atomic rename),
which is many times faster than Django's generic storage API for small images; other
backends (S3-compatible storage) go through that API."""

import os
import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage

FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}

_known_dirs: set[str] = set()


def item_file_name(*, sha256: str, image_format: str) -> str:
    suffix = FORMAT_SUFFIX.get(image_format.upper(), "." + image_format.lower())
    return f"items/{sha256[:2]}/{sha256}{suffix}"


def _local_storage() -> FileSystemStorage | None:
    storage = getattr(default_storage, "_wrapped", default_storage)
    return storage if isinstance(storage, FileSystemStorage) else None


def file_store(*, name: str, content: bytes) -> bool:
    """Writes the content under its address unless it is already there.
    Returns True when this call created the file."""
    local = _local_storage()
    if local is None:
        return _generic_store(name, content)
    path = local.path(name)
    if os.path.exists(path):
        return False
    folder = os.path.dirname(path)
    if folder not in _known_dirs:
        os.makedirs(folder, exist_ok=True)
        _known_dirs.add(folder)
    # A crash mid-write must never leave a truncated file under a content address.
    temporary = f"{path}.{uuid.uuid4().hex}.part"
    with open(temporary, "wb") as handle:
        handle.write(content)
    os.replace(temporary, path)
    return True


def _generic_store(name: str, content: bytes) -> bool:
    if default_storage.exists(name):
        return False
    saved = default_storage.save(name, ContentFile(content))
    if saved != name:  # a concurrent writer got there first; same bytes, keep theirs
        default_storage.delete(saved)
        return False
    return True


def file_delete(*, name: str) -> None:
    default_storage.delete(name)


def file_replace(*, name: str, content: bytes) -> None:
    """Writes `content` under exactly `name` in media storage, replacing what was there (a
    rerun's artifact or a refreshed cache); Django's storage would pick another name."""
    if default_storage.exists(name):
        default_storage.delete(name)
    default_storage.save(name, ContentFile(content))

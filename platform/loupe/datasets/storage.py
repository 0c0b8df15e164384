"""Content-addressed media storage for item files: items/<sha[:2]>/<sha><ext>.

On the local filesystem files are written directly (temporary name, then an atomic rename),
which is many times faster than Django's generic storage API for small images; other
backends (S3-compatible storage) go through that API."""

import contextlib
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
    _write_whole(path, content)
    return True


def _write_whole(path: str, content: bytes) -> None:
    """Writes under a temporary name, then renames over `path`: a crash or a full disk
    mid-write never leaves a truncated file under the name, and a failed write leaves what
    was there before (and no temporary file)."""
    temporary = f"{path}.{uuid.uuid4().hex}.part"
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


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
    rerun's artifact or a refreshed cache); Django's storage would pick another name. On
    the local filesystem the new file replaces the old one only once it is whole."""
    local = _local_storage()
    if local is not None:
        path = local.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_whole(path, content)
        return
    if default_storage.exists(name):
        default_storage.delete(name)
    default_storage.save(name, ContentFile(content))

"""Content-addressed media storage for item files: items/<sha[:2]>/<sha><ext>."""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}


def item_file_name(*, sha256: str, image_format: str) -> str:
    suffix = FORMAT_SUFFIX.get(image_format.upper(), "." + image_format.lower())
    return f"items/{sha256[:2]}/{sha256}{suffix}"


def file_store(*, name: str, content: bytes) -> bool:
    """Writes the content under its address unless it is already there.
    Returns True when this call created the file."""
    if default_storage.exists(name):
        return False
    saved = default_storage.save(name, ContentFile(content))
    if saved != name:  # a concurrent writer got there first; same bytes, keep theirs
        default_storage.delete(saved)
        return False
    return True


def file_delete(*, name: str) -> None:
    default_storage.delete(name)

"""Media storage: a local content-addressed folder (LOUPE_MEDIA_ROOT), which Label Studio reads
too (local-files storage) and which training and scoring open by path. Only local storage
works, so LOUPE_STORAGE_BACKEND accepts nothing else: a remote backend is refused when the
settings load rather than failing on the first import."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import VAR_DIR, env

LOCAL_STORAGE = "django.core.files.storage.FileSystemStorage"
_LOCAL_NAMES = {LOCAL_STORAGE, "django.core.files.storage.filesystem.FileSystemStorage"}

MEDIA_ROOT = Path(env.str("LOUPE_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"

_backend = env.str("LOUPE_STORAGE_BACKEND", default=LOCAL_STORAGE)
if _backend not in _LOCAL_NAMES:
    raise ImproperlyConfigured(
        f"LOUPE_STORAGE_BACKEND={_backend} is not supported: Loupe keeps media in a local "
        "folder (LOUPE_MEDIA_ROOT) that Label Studio serves from and that training reads by "
        "path; S3-compatible and other remote storage do not work. Unset "
        "LOUPE_STORAGE_BACKEND and point LOUPE_MEDIA_ROOT at a folder (a shared volume when "
        "Loupe and Label Studio run on different machines)."
    )

STORAGES = {
    "default": {"BACKEND": LOCAL_STORAGE},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_TEMP_DIR = None
# The size limit (LOUPE_MAX_UPLOAD_BYTES) counts each file's bytes before they are stored.
FILE_UPLOAD_HANDLERS = [
    "loupe.datasets.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

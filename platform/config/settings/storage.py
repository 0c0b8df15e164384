"""Media storage: a local content-addressed folder by default; S3-compatible storage by setting
LOUPE_STORAGE_BACKEND to storages.backends.s3.S3Storage (django-storages)."""

from pathlib import Path

from config.env import VAR_DIR, env

MEDIA_ROOT = Path(env.str("LOUPE_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {
        "BACKEND": env.str(
            "LOUPE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_TEMP_DIR = None
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

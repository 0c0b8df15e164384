"""Media lives in a local folder that Label Studio reads too: a storage backend that is not
local is refused when the settings load, with a message that says why, instead of failing
later on the first import or training run."""

import importlib.util
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR

STORAGE_SETTINGS = BASE_DIR / "platform" / "config" / "settings" / "storage.py"


def load_storage_settings(monkeypatch, backend: str | None):
    """A fresh copy of the storage settings module, read under this environment."""
    if backend is None:
        monkeypatch.delenv("LOUPE_STORAGE_BACKEND", raising=False)
    else:
        monkeypatch.setenv("LOUPE_STORAGE_BACKEND", backend)
    spec = importlib.util.spec_from_file_location("storage_settings_probe", STORAGE_SETTINGS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "backend", [None, "django.core.files.storage.FileSystemStorage"], ids=["unset", "local"]
)
def test_the_local_folder_is_accepted(monkeypatch, backend):
    module = load_storage_settings(monkeypatch, backend)
    assert module.STORAGES["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"


@pytest.mark.parametrize(
    "backend", ["storages.backends.s3.S3Storage", "storages.backends.gcloud.GoogleCloudStorage"]
)
def test_a_remote_backend_is_refused_with_a_clear_message(monkeypatch, backend):
    with pytest.raises(ImproperlyConfigured) as refused:
        load_storage_settings(monkeypatch, backend)
    message = str(refused.value)
    assert backend in message
    assert "LOUPE_MEDIA_ROOT" in message


def test_the_server_does_not_start_with_s3_storage():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.django.local",
        "LOUPE_STORAGE_BACKEND": "storages.backends.s3.S3Storage",
    }
    env.pop("DATABASE_URL", None)
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode != 0
    assert "ImproperlyConfigured" in checked.stderr
    assert "storages.backends.s3.S3Storage" in checked.stderr

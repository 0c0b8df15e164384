"""Fixtures shared by the whole suite."""

import os

import pytest


@pytest.fixture
def import_root(tmp_path, settings):
    """A folder the import may read from (an allowed import root)."""
    root = tmp_path / "imports"
    root.mkdir()
    settings.LOUPE_IMPORT_ROOTS = [str(root)]
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"
    return root


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    """A fresh media folder per test, and no cache entry left about another test's files
    (ids repeat between tests on SQLite, so a key such as a version's scan request would)."""
    from django.core.cache import cache

    settings.MEDIA_ROOT = str(tmp_path / "media")
    cache.clear()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def pytest_report_header(config):
    return f"database: {os.environ.get('DATABASE_URL', 'sqlite (embedded default)')}"


from tests.learning_fixtures import inspection_project  # noqa: E402,F401


def pytest_sessionfinish(session, exitstatus):
    """Removes this session's filesystem-broker folder (see config/django/test.py)."""
    import shutil

    from django.conf import settings

    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", "")
    if f"broker-test-{os.getpid()}" in folder:
        shutil.rmtree(os.path.dirname(folder), ignore_errors=True)

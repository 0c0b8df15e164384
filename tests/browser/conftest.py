"""Playwright drives Debian's Chromium (never a downloaded browser)."""

import os
import shutil

import pytest

from tests.services import require_service

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = os.environ.get("LOUPE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "..", "test-artifacts")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not shutil.which(CHROMIUM):
        require_service("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def screenshot(page):
    os.makedirs(ARTIFACTS, exist_ok=True)

    def take(name: str) -> str:
        path = os.path.abspath(os.path.join(ARTIFACTS, f"{name}.png"))
        page.screenshot(path=path, full_page=True)
        return path

    return take

"""Checks for the real services a test needs. Without CI a missing service skips the test with
its reason; with CI set, it fails the test, so a broken stack is never a green run."""

import os
import socket
from urllib.parse import urlparse

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_service(name: str, reason: str) -> None:
    message = f"{name} is not available: {reason}"
    if in_ci():
        pytest.fail(message + " (CI is set, so this fails instead of skipping)")
    pytest.skip(message)


def tcp_open(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False

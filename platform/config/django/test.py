"""Settings for the test suite. The same code runs on SQLite or, with DATABASE_URL, PostgreSQL."""

import os

from config.django.base import *  # noqa: F403
from config.django.base import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Jobs run in-process unless a test starts a real worker.
LOUPE_JOBS_EAGER = True
# Nothing listens here: a test that needs Label Studio starts its own and says so.
LABEL_STUDIO_URL = "http://127.0.0.1:9"

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a worker process started by a test sees the same data.
    # One file per test session, so parallel sessions on one machine do not collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-loupe-{os.getpid()}.sqlite3")}

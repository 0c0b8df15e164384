"""Settings for the test suite. The same code runs on SQLite or, with DATABASE_URL, PostgreSQL."""

from config.django.base import *  # noqa: F403
from config.django.base import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Jobs run in-process unless a test starts a real worker.
LOUPE_JOBS_EAGER = True

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a worker process started by a test sees the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-loupe.sqlite3")}

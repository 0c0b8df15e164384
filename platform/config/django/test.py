"""Settings for the test suite. The same code runs on SQLite or, with DATABASE_URL, PostgreSQL."""

import os

from config.django.base import *  # noqa: F403
from config.django.base import DATABASES, VAR_DIR
from config.env import env
from config.settings.celery import filesystem_broker_options

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Jobs run in-process unless a test starts a real worker.
LOUPE_JOBS_EAGER = True
if CELERY_BROKER_URL.startswith("filesystem://"):  # noqa: F405
    # One broker folder per test session: workers of another session never take its tasks.
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(
        VAR_DIR / f"broker-test-{os.getpid()}"
    )
# The suite trains tiny models for the few epochs its projects ask for (tests of the
# minimum set it themselves).
LOUPE_MIN_TRAIN_STEPS = env.int("LOUPE_MIN_TRAIN_STEPS", default=0)
# Nothing listens here: a test that needs Label Studio starts its own and says so.
LABEL_STUDIO_URL = "http://127.0.0.1:9"

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a worker process started by a test sees the same data.
    # One file per test session, so parallel sessions on one machine do not collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-loupe-{os.getpid()}.sqlite3")}

"""Celery: a serverless filesystem broker by default (a real worker process still consumes it);
Redis or RabbitMQ when CELERY_BROKER_URL names one."""

from pathlib import Path

from config.env import VAR_DIR, env


def filesystem_broker_options(folder: Path) -> dict:
    """Transport options of the filesystem broker whose messages live under `folder`; the
    folders are created, as the transport expects them to exist."""
    for name in ("queue", "control"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        # How often an idle worker looks for new messages: each hop of the loop (train ->
        # score -> select) waits up to this long.
        "polling_interval": env.float("LOUPE_BROKER_POLLING_INTERVAL", default=0.2),
    }


CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(
        Path(env.str("LOUPE_BROKER_DIR", default=str(VAR_DIR / "broker")))
    )
# State lives in the database (runs, jobs); Celery results are not needed.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=6 * 3600 - 60)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# Each task's queue comes from the one table of tasks, loupe.jobs.TASKS: training and scoring
# go to `gpu` (a CPU worker may consume it too, as `make demo` does), the rest to `default`.
CELERY_TASK_ROUTES = ("workers.routing.route",)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # An unacknowledged message (worker killed) comes back after this long; beat's resume
    # task usually re-sends the work sooner.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }

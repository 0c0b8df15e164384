"""Starts a real `celery worker` process against the test database and broker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.services import require_service, tcp_open

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The URL of the database this test session uses (the test database, not the dev one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def broker_dir() -> Path:
    """The filesystem broker's folder of this session (unused with Redis or RabbitMQ)."""
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
    return Path(folder).parent if folder else Path(settings.MEDIA_ROOT).parent / "broker"


def check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://") and not tcp_open(url, 6379):
        require_service("Redis", f"nothing answers at {url}")
    if url.startswith("amqp://") and not tcp_open(url, 5672):
        require_service("RabbitMQ", f"nothing answers at {url}")


class WorkerProcess:
    """A `celery -A config.celery worker` child process; stop() or kill() ends it."""

    def __init__(self, *, queues: str = "default,gpu", concurrency: int = 1, extra_env=None):
        check_broker()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.django.local",
            "DATABASE_URL": database_url(),
            "LOUPE_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "LOUPE_IMPORT_ROOTS": ",".join(settings.LOUPE_IMPORT_ROOTS),
            "LOUPE_UPLOAD_DIR": str(settings.LOUPE_UPLOAD_DIR),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "LOUPE_BROKER_DIR": str(broker_dir()),
            "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
            **(extra_env or {}),
        }
        self.log_path = Path(settings.MEDIA_ROOT).parent / f"worker-{time.time_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config.celery",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crashed machine would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._log.close()


def wait_for(predicate, *, timeout: float, interval: float = 0.25, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = f"\n--- worker log ---\n{worker.log()[-4000:]}" if worker else ""
    raise AssertionError(f"condition not met within {timeout} s{detail}")

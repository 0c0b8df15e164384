"""Worker start-up: every worker loads it, and torch threads are shared out sensibly."""

from config.celery import app
from workers.startup import torch_threads


def test_the_celery_app_loads_the_worker_start_up():
    assert "workers.startup" in app.conf.include


def test_torch_threads_divide_the_cores_among_processes(monkeypatch):
    monkeypatch.delenv("LOUPE_TORCH_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert torch_threads(1) == 8
    assert torch_threads(4) == 2
    assert torch_threads(16) == 1
    monkeypatch.setenv("LOUPE_TORCH_THREADS", "3")
    assert torch_threads(4) == 3

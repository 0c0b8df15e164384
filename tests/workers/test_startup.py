"""Worker start-up: every worker loads it, and torch threads are shared out sensibly."""

from config.celery import app
from workers.startup import torch_threads


def test_the_celery_app_loads_the_worker_start_up():
    assert "workers.startup" in app.conf.include


def test_torch_threads_use_half_the_cores_divided_among_processes(monkeypatch):
    monkeypatch.delenv("LOUPE_TORCH_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert torch_threads(1) == 8
    assert torch_threads(2) == 4
    assert torch_threads(4) == 2
    assert torch_threads(16) == 1


def test_a_small_machine_gets_one_torch_thread_per_process(monkeypatch):
    monkeypatch.delenv("LOUPE_TORCH_THREADS", raising=False)
    for cores in (1, 2, 3):
        monkeypatch.setattr("os.cpu_count", lambda cores=cores: cores)
        assert torch_threads(1) == 1
    monkeypatch.setattr("os.cpu_count", lambda: None)  # unknown: one thread, not zero
    assert torch_threads(1) == 1


def test_loupe_torch_threads_overrides_the_default(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setenv("LOUPE_TORCH_THREADS", "3")
    assert torch_threads(4) == 3
    monkeypatch.setenv("LOUPE_TORCH_THREADS", "0")
    assert torch_threads(1) == 1

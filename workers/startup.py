"""Worker start-up: one device switch (CUDA when present, the CPU otherwise), spawn for any
subprocess torch starts (CUDA must never be initialised in a forked child), and a torch
thread count that does not oversubscribe the machine when several workers share it."""

import contextlib
import logging
import multiprocessing
import os

from celery.signals import task_prerun, worker_init

logger = logging.getLogger(__name__)


def torch_threads(concurrency: int) -> int:
    """LOUPE_TORCH_THREADS, else half the cores divided among the worker's processes, and at
    least one: the other half stays for what shares the machine (the web server, the
    database, a second worker, image decoding). On a small machine that means one thread:
    on 2 cores with a neighbour busy, two threads per process made training several times
    slower than one (benchmarks/torch_threads.py)."""
    configured = os.environ.get("LOUPE_TORCH_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, (os.cpu_count() or 1) // (2 * max(1, concurrency)))


@worker_init.connect
def _use_spawn(sender=None, **kwargs) -> None:
    # DataLoader workers and any other subprocess torch creates start fresh: a forked child
    # of a process that touched CUDA crashes. The prefork pool itself may fork, because the
    # parent never imports torch's CUDA state (tasks import torch lazily).
    with contextlib.suppress(RuntimeError):  # already set by the embedding process
        multiprocessing.set_start_method("spawn", force=True)
    # Idle OpenMP threads must not spin: on a machine shared by several workers, spinning
    # threads made training several times slower (benchmarks/loop_latency.py).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    concurrency = getattr(sender, "concurrency", 1) or 1
    os.environ.setdefault("LOUPE_TORCH_THREADS", str(torch_threads(concurrency)))


_configured_pid: int | None = None


@task_prerun.connect
def _configure_torch(**kwargs) -> None:
    """Once per process that runs tasks (prefork child, or the solo/threads worker itself),
    before its first task: never in the prefork parent."""
    global _configured_pid
    if _configured_pid == os.getpid():
        return
    _configured_pid = os.getpid()
    import torch

    from ml.device import describe_device, pick_device

    threads = torch_threads(1)
    torch.set_num_threads(threads)
    device = pick_device(os.environ.get("LOUPE_DEVICE") or None)
    logger.info("worker process uses %s with %d torch threads", describe_device(device), threads)

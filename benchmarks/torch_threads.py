"""Torch threads per worker process: the platform's small CNN trained for N steps with 1 and
2 torch threads, alone and beside a busy neighbour, in fresh child processes.

    .venv/bin/python benchmarks/torch_threads.py [--steps 60] [--threads 1,2]
        [--image-size 32] [--batch-size 32] [--repeats 2]

Neighbours: ``none`` (the machine to itself), ``spin`` (one process keeping one core busy
in pure Python, like a web server or another tool) and ``train`` (a second worker training
the same network with the same thread count, as two worker processes on one machine do).
Children run with OMP_WAIT_POLICY=PASSIVE, as the workers set it. Each cell is the best of
``--repeats`` runs; the ratio compares a thread count with 1 thread beside the same
neighbour (above 1: slower). No assert: the table is the result (about 1-2 minutes on
2 cores)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_train(args) -> None:
    """Trains for --steps steps (or until killed when --forever) and prints seconds per step."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from ml.models import SmallCNN
    from ml.training import TrainConfig, train_classifier

    torch.set_num_threads(int(args.threads))
    rng = np.random.default_rng(0)
    n = args.batch_size * 10
    x = torch.rand(n, 3, args.image_size, args.image_size)
    y = rng.integers(0, 4, size=n)
    model = SmallCNN(4, 3, args.image_size, seed=0)
    warm = TrainConfig(epochs=1, max_steps=3, batch_size=args.batch_size)
    train_classifier(model, x, y, config=warm)  # first-call allocations
    if args.forever:
        print("ready", flush=True)
        forever = TrainConfig(epochs=100, batch_size=args.batch_size)
        while True:
            train_classifier(model, x, y, config=forever)
    config = TrainConfig(
        epochs=1, min_steps=args.steps, max_steps=args.steps, batch_size=args.batch_size
    )
    started = time.perf_counter()
    train_classifier(model, x, y, config=config)
    print(json.dumps({"step_s": (time.perf_counter() - started) / args.steps}), flush=True)


def child_spin() -> None:
    print("ready", flush=True)
    while True:
        sum(i * i for i in range(10_000))


def _env(threads: int) -> dict:
    return {
        **os.environ,
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }


def _command(args, *extra: str) -> list[str]:
    return [sys.executable, __file__, "--image-size", str(args.image_size)] + [
        "--batch-size",
        str(args.batch_size),
        *extra,
    ]


def measure(args, threads: int, neighbour: str) -> float:
    """Seconds per step of one run with `threads` threads beside `neighbour`."""
    other = None
    if neighbour != "none":
        extra = ["--child", "spin"] if neighbour == "spin" else ["--child", "train", "--forever"]
        other = subprocess.Popen(
            _command(args, *extra, "--threads", str(threads)),
            env=_env(threads),
            stdout=subprocess.PIPE,
            text=True,
        )
        if other.stdout.readline().strip() != "ready":
            raise RuntimeError("the neighbour did not start")
    try:
        done = subprocess.run(
            _command(args, "--child", "train", "--threads", str(threads), "--steps")
            + [str(args.steps)],
            env=_env(threads),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the measured run failed:\n{done.stderr[-3000:]}")
        out = done.stdout
    finally:
        if other is not None:
            other.kill()
            other.wait()
    return json.loads(out.strip().splitlines()[-1])["step_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", default="1,2", help="thread counts to compare")
    parser.add_argument("--neighbours", default="none,spin,train")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=["train", "spin"], help=argparse.SUPPRESS)
    parser.add_argument("--forever", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "spin":
        child_spin()
        return
    if args.child == "train":
        child_train(args)
        return

    counts = [int(t) for t in args.threads.split(",")]
    neighbours = args.neighbours.split(",")
    load = os.getloadavg()[0]
    seconds: dict[tuple[str, int], float] = {}
    for _ in range(args.repeats):  # interleaved, so a burst of load hits every cell alike
        for neighbour in neighbours:
            for threads in counts:
                value = measure(args, threads, neighbour)
                key = (neighbour, threads)
                seconds[key] = min(seconds.get(key, value), value)
                line = f"  {neighbour:5} {threads} thread(s): {value * 1000:.0f} ms/step"
                print(line, flush=True)
    print(
        f"\nSmallCNN {args.image_size}x{args.image_size}, batch {args.batch_size}, "
        f"{args.steps} training steps, best of {args.repeats}; {os.cpu_count()} cores, load "
        f"average {load:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print("| neighbour | threads | ms per step | vs 1 thread |")
    print("|---|---:|---:|---:|")
    for neighbour in neighbours:
        base = seconds.get((neighbour, 1))
        for threads in counts:
            value = seconds[(neighbour, threads)]
            ratio = f"{value / base:.2f}x" if base else "-"
            print(f"| {neighbour} | {threads} | {value * 1000:.0f} | {ratio} |")
    print(
        "\n(neighbour none: the machine to itself; spin: one other process busy on one core; "
        "train: a second process training the same network with the same thread count)"
    )


if __name__ == "__main__":
    main()

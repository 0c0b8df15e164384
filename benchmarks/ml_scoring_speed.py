"""Scoring speed: ``ml.scoring.score`` against a bare torch forward loop.

Both score the same pool tensor with the same model and batch size, on the same device;
``score`` additionally returns probabilities and embeddings as numpy arrays. The target is
a ratio of at least 0.90. Each method runs ``--repeats`` times, interleaved, and the best
time counts, which keeps a noisy shared machine from deciding the result.

    .venv/bin/python benchmarks/ml_scoring_speed.py            # < 1 min on 2 CPU cores
    .venv/bin/python benchmarks/ml_scoring_speed.py --n 20000 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.device import describe_device, pick_device  # noqa: E402
from ml.models import MLP, SmallCNN  # noqa: E402
from ml.scoring import score  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``fn()``."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def bare_loop(model: torch.nn.Module, x: torch.Tensor, batch_size: int, device) -> None:
    """The reference: forward passes only, outputs discarded."""
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size].to(device, non_blocking=True))


def through_ml(model, x, batch_size, device, mc_samples=0) -> None:
    score(model, x, batch_size=batch_size, device=device, mc_samples=mc_samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="pool size (items)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--model", choices=["small_cnn", "mlp"], default="small_cnn")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mc-samples", type=int, default=20, help="for the extra MC row")
    parser.add_argument("--device", default=None, help="auto (default), cpu or cuda[:N]")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(0)
    if args.model == "small_cnn":
        model = SmallCNN(num_classes=4, image_size=args.image_size, seed=0)
        x = torch.rand(args.n, 3, args.image_size, args.image_size)
    else:
        model = MLP(in_features=64, num_classes=10, seed=0)
        x = torch.rand(args.n, 64)
    if device.type == "cuda":
        x = x.pin_memory()
    model.to(device).eval()

    # Warm-up: first calls pay for allocator growth and kernel selection.
    warm = x[: args.batch_size * 2]
    bare_loop(model, warm, args.batch_size, device)
    through_ml(model, warm, args.batch_size, device)

    runs = {
        "bare torch forward loop": lambda: bare_loop(model, x, args.batch_size, device),
        "ml.scoring.score (probs + embeddings)": lambda: through_ml(
            model, x, args.batch_size, device
        ),
        f"ml.scoring.score + {args.mc_samples} MC-dropout samples": lambda: through_ml(
            model, x, args.batch_size, device, args.mc_samples
        ),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so a burst of load hits every method
        for name, fn in runs.items():
            times[name].append(_timed(fn, device))
    wall = {name: min(t[0] for t in ts) for name, ts in times.items()}
    cpu = {name: min(t[1] for t in ts) for name, ts in times.items()}
    names = list(runs)

    print(f"device: {describe_device(device)}   torch {torch.__version__}")
    print(
        f"model: {args.model}  pool: {args.n} x {tuple(x.shape[1:])}  "
        f"batch: {args.batch_size}  best of {args.repeats}"
    )
    print()
    header = f"| {'method':<44} | {'items/s':>9} | {'wall s':>7} | {'vs bare':>7} |"
    if device.type == "cpu":
        header += f" {'cpu s':>7} | {'vs bare (cpu)':>13} |"
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    bare = names[0]
    for name in names:
        line = (
            f"| {name:<44} | {args.n / wall[name]:>9,.0f} | {wall[name]:>7.3f} "
            f"| {wall[bare] / wall[name]:>7.2f} |"
        )
        if device.type == "cpu":
            line += f" {cpu[name]:>7.3f} | {cpu[bare] / cpu[name]:>13.2f} |"
        print(line)
    ratio = wall[bare] / wall[names[1]]
    verdict = "met" if ratio >= 0.9 else "MISSED"
    print()
    print(f"throughput ratio ml / bare (wall clock): {ratio:.2f}  (target >= 0.90: {verdict})")
    if device.type == "cpu":
        # On a machine shared with other work, CPU time is the steadier of the two.
        print(f"same ratio by process CPU time: {cpu[bare] / cpu[names[1]]:.2f}")


if __name__ == "__main__":
    main()

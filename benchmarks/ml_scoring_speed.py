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


def bare_loop(model: torch.nn.Module, x: torch.Tensor, batch_size: int, device) -> float:
    """The reference: forward passes only, outputs discarded."""
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size].to(device, non_blocking=True))
    _sync(device)
    return time.perf_counter() - start


def through_ml(model, x, batch_size, device, mc_samples=0) -> float:
    _sync(device)
    start = time.perf_counter()
    score(model, x, batch_size=batch_size, device=device, mc_samples=mc_samples)
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="pool size (items)")
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

    times: dict[str, list[float]] = {"bare": [], "ml": [], "mc": []}
    for _ in range(args.repeats):
        times["bare"].append(bare_loop(model, x, args.batch_size, device))
        times["ml"].append(through_ml(model, x, args.batch_size, device))
        times["mc"].append(through_ml(model, x, args.batch_size, device, args.mc_samples))
    bare, ours, mc_time = (min(times[k]) for k in ("bare", "ml", "mc"))

    print(f"device: {describe_device(device)}   torch {torch.__version__}")
    print(
        f"model: {args.model}  pool: {args.n} x {tuple(x.shape[1:])}  "
        f"batch: {args.batch_size}  best of {args.repeats}"
    )
    print()
    print(f"| {'method':<44} | {'items/s':>10} | {'seconds':>8} | {'vs bare':>7} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 10}|{'-' * 9}|")
    rows = [
        ("bare torch forward loop", bare),
        ("ml.scoring.score (probs + embeddings)", ours),
        (f"ml.scoring.score + {args.mc_samples} MC-dropout samples", mc_time),
    ]
    for name, sec in rows:
        print(f"| {name:<44} | {args.n / sec:>10,.0f} | {sec:>8.3f} | {bare / sec:>7.2f} |")
    ratio = bare / ours
    verdict = "met" if ratio >= 0.9 else "MISSED"
    print()
    print(f"throughput ratio ml / bare: {ratio:.2f}  (target >= 0.90: {verdict})")


if __name__ == "__main__":
    main()

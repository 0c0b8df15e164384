"""Label efficiency: how many labels does each strategy need to reach 90% of the
balanced accuracy a model trained on the whole pool gets? Random sampling is the baseline,
run in the same process on the same seeds, holdouts, initial sets and model.

    .venv/bin/python benchmarks/label_efficiency.py                 # default vs random
    .venv/bin/python benchmarks/label_efficiency.py --strategies random,margin,class_balanced \\
        --datasets digits,digits-1-7 --seeds 10

Datasets (all class-imbalanced, two rare classes kept at 5%, about 20:1):
  digits       sklearn's digits, rare 3 and 8  (used to choose the default strategy)
  digits-1-7   sklearn's digits, rare 1 and 7  (used to choose it too; 1 and 7 look alike)
  digits-0-6   sklearn's digits, rare 0 and 6  (held out: never used for a choice)

The default strategy also runs with temperature scaling (row "<default>+temperature"): each
round a temperature fitted on the holdout divides the pool's logits before selection sees
them, as Loupe does with a version's temperature. Same seeds, holdouts, initial sets and
models, so the two rows differ by calibration only. `--temperature-scaling ""` skips it.

    .venv/bin/python benchmarks/label_efficiency.py --datasets digits --seeds 3 --rounds 20

Target: the default strategy needs at most half the labels random sampling needs.
A seed that never reaches the target within the budget counts as the whole budget, so the
random baseline's mean is then a lower bound and the ratio an overestimate (conservative).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.simulation import simulate_arrays  # noqa: E402
from ml.simulation.engine import TEMPERATURE_SUFFIX  # noqa: E402
from ml.strategies import DEFAULT_STRATEGY, available  # noqa: E402
from ml.synthetic import load_digits_arrays  # noqa: E402

DATASETS = {
    "digits": (3, 8),
    "digits-1-7": (1, 7),
    "digits-0-6": (0, 6),
}


def run_dataset(name: str, args) -> dict:
    rare = DATASETS[name]
    x, y = load_digits_arrays(rare, args.rare_fraction, seed=0)
    started = time.perf_counter()
    result = simulate_arrays(
        x,
        y,
        strategies=args.strategies,
        seeds=list(range(args.seeds)),
        initial=args.initial,
        batch=args.batch,
        rounds=args.rounds,
        holdout_fraction=args.holdout,
        target_fraction=args.target,
        stop_at_target=True,
        temperature_scaling=args.temperature_scaling,
        progress=not args.quiet,
    )
    result["seconds"] = time.perf_counter() - started
    result["rare_classes"] = list(rare)
    return result


def print_table(name: str, result: dict, args) -> bool | None:
    counts = np.array(result["dataset"]["class_counts"])
    full = result["full_data"]
    budget = args.initial + args.rounds * args.batch
    print(
        f"\n{name}: {counts.sum()} items, rare classes {result['rare_classes']} "
        f"({counts.min()} vs {int(np.median(counts))} items, "
        f"{np.median(counts) / counts.min():.0f}:1), holdout {args.holdout:.0%}, "
        f"initial {args.initial}, batch {args.batch}, budget {budget} labels, "
        f"{args.seeds} seeds, {result['seconds']:.0f} s"
    )
    print(
        f"full-data balanced accuracy {full['balanced_accuracy_mean']:.3f} ± "
        f"{full['balanced_accuracy_std']:.3f}; target {args.target:.0%} of it per seed"
    )
    base = result["labels_to_target_summary"].get("random")
    width = max(16, *(len(name) + 1 for name in result["strategies"]))
    header = f"{'strategy':<{width}} {'labels to target':>18} {'missed':>7} {'vs random':>10}"
    print(header)
    print("-" * len(header))
    for strategy in result["strategies"]:
        s = result["labels_to_target_summary"][strategy]
        ratio = s["mean"] / base["mean"] if base and base["mean"] else float("nan")
        marker = "  (default)" if strategy == DEFAULT_STRATEGY else ""
        if strategy == DEFAULT_STRATEGY + TEMPERATURE_SUFFIX:
            marker = "  (default, with temperature scaling)"
        print(
            f"{strategy:<{width}} {s['mean']:>9.0f} ± {s['std']:<6.0f} "
            f"{s['missed']:>3}/{s['seeds']:<3} {ratio:>9.2f}x{marker}"
        )
    temperatures = [
        t
        for name in result["strategies"]
        if name.endswith(TEMPERATURE_SUFFIX)
        for run in result["curves"][name]["per_seed"]
        for t in run.get("temperature", [])
    ]
    if temperatures:
        print(
            f"temperatures fitted on the holdout: median {np.median(temperatures):.2f} "
            f"(range {min(temperatures):.2f}-{max(temperatures):.2f}, {len(temperatures)} fits)"
        )
    if base and DEFAULT_STRATEGY in result["labels_to_target_summary"]:
        ratio = result["labels_to_target_summary"][DEFAULT_STRATEGY]["mean"] / base["mean"]
        met = ratio <= 0.5
        print(f"target (default <= 0.50x random): {'met' if met else 'MISSED'} ({ratio:.2f}x)")
        return met
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Labels needed to reach 90% of full data.")
    parser.add_argument("--strategies", default=f"random,{DEFAULT_STRATEGY}")
    parser.add_argument("--datasets", default="digits,digits-1-7,digits-0-6")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--holdout", type=float, default=0.25)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--rare-fraction", type=float, default=0.05)
    parser.add_argument(
        "--temperature-scaling",
        default=DEFAULT_STRATEGY,
        help="strategies also run with temperature scaling (comma-separated; '' for none)",
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.strategies = [s for s in args.strategies.split(",") if s]
    args.temperature_scaling = [s for s in args.temperature_scaling.split(",") if s]
    unknown = [s for s in args.strategies if s not in available()]
    unknown += [s for s in args.temperature_scaling if s not in args.strategies]
    datasets = [d for d in args.datasets.split(",") if d]
    unknown += [d for d in datasets if d not in DATASETS]
    if unknown:
        print(f"unknown: {', '.join(unknown)}", file=sys.stderr)
        return 2
    results = {}
    verdicts = []
    for name in datasets:
        results[name] = run_dataset(name, args)
        verdicts.append(print_table(name, results[name], args))
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    return 0 if all(v is not False for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())

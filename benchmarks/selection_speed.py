"""How fast is selection? Each row is timed beside a naive baseline in the same run.

    .venv/bin/python benchmarks/selection_speed.py [--repeats 5] [--baseline-picks 1000]

Targets (2 CPU cores): picking 1,000 of 1,000,000 items by uncertainty < 50 ms; greedy
k-center picking 1,000 of 100,000 x 64-d embeddings < 10 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.strategies import AcquisitionInputs, badge_select, get_strategy, top_k  # noqa: E402
from ml.strategies.clustering import k_center_greedy  # noqa: E402
from ml.strategies.uncertainty import margin_scores  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time in seconds over ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def naive_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Full sort of every score, then the first ``k``."""
    return np.argsort(-scores, kind="stable")[:k]


def naive_margin_select(probs: np.ndarray, k: int) -> np.ndarray:
    """Sort every row to get the margin, then sort every item."""
    s = np.sort(probs, axis=1)
    return naive_top(1.0 - (s[:, -1] - s[:, -2]), k)


def naive_k_center(x: np.ndarray, picks: int, first: int) -> np.ndarray:
    """Textbook k-center greedy: explicit differences to each new center, in float64."""
    x = x.astype(np.float64)
    min_d = np.linalg.norm(x - x[first], axis=1)
    chosen = [first]
    for _ in range(picks - 1):
        i = int(np.argmax(min_d))
        chosen.append(i)
        min_d = np.minimum(min_d, np.linalg.norm(x - x[i], axis=1))
    return np.array(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--embeddings", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--picks", type=int, default=1000)
    parser.add_argument(
        "--baseline-picks",
        type=int,
        default=None,
        help="run the naive k-center for fewer picks and scale linearly (default: all)",
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []

    probs = rng.dirichlet(np.full(args.classes, 0.3), size=args.pool).astype(np.float32)
    scores = margin_scores(probs)
    ours, chosen = timed(lambda: top_k(scores, args.picks), args.repeats)
    base, expected = timed(lambda: naive_top(scores, args.picks), args.repeats)
    assert set(chosen.tolist()) == set(expected.tolist())
    rows.append((f"top {args.picks:,} of {args.pool:,} scores", ours, base, "full argsort", 0.050))

    margin = get_strategy("margin")
    inputs = AcquisitionInputs(probs)
    ours, sel = timed(lambda: margin.select(inputs, args.picks, seed=0), args.repeats)
    base, expected = timed(lambda: naive_margin_select(probs, args.picks), args.repeats)
    overlap = len(set(sel.indices.tolist()) & set(expected.tolist())) / args.picks
    assert overlap > 0.99, overlap  # float32 ties at the cut-off may swap a few items
    task = f"margin from probs ({args.pool:,} x {args.classes})"
    rows.append((task, ours, base, "row sort + argsort", None))

    emb = rng.normal(size=(args.embeddings, args.dim)).astype(np.float32)
    first = int(np.random.default_rng(1).integers(args.embeddings))
    ours, (picked, _) = timed(
        lambda: k_center_greedy(emb, args.picks, rng=np.random.default_rng(1)), 1
    )
    baseline_picks = args.baseline_picks or args.picks
    base, naive = timed(lambda: naive_k_center(emb, baseline_picks, first), 1)
    assert picked[0] == first
    agree = np.mean(picked[:baseline_picks] == naive)
    label = "naive k-center"
    if baseline_picks != args.picks:
        base *= args.picks / baseline_picks
        label += f" ({baseline_picks} picks, scaled)"
    rows.append(
        (f"k-center {args.picks:,} of {args.embeddings:,} x {args.dim}", ours, base, label, 10.0)
    )

    small_probs = rng.dirichlet(np.full(args.classes, 0.3), size=args.embeddings)
    ours, _ = timed(
        lambda: badge_select(small_probs, emb, args.picks, rng=np.random.default_rng(0)), 1
    )
    rows.append((f"BADGE {args.picks:,} of {args.embeddings:,}", ours, None, "", None))

    print(f"\nSelection speed (numpy {np.__version__}, median of {args.repeats} where repeated)")
    header = f"{'task':<42} {'loupe':>10} {'baseline':>10} {'speed-up':>9}  {'target':>8}  baseline"
    print(header)
    print("-" * len(header))
    for task, t_ours, t_base, base_name, target in rows:
        speed = f"{t_base / t_ours:8.1f}x" if t_base else f"{'':>9}"
        base_s = f"{t_base * 1e3:8.1f}ms" if t_base else f"{'':>10}"
        verdict = ""
        if target is not None:
            verdict = f"{'<' if t_ours < target else '>'}{target * 1e3:.0f}ms " + (
                "ok" if t_ours < target else "MISSED"
            )
        print(f"{task:<42} {t_ours * 1e3:8.1f}ms {base_s} {speed}  {verdict:>8}  {base_name}")
    print(f"k-center: loupe and the naive baseline agree on {agree:.1%} of the picks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Loupe's default strategy against other active-learning libraries' strategies.

Same model (Loupe's MLP, retrained from scratch each round), same data, seeds, holdouts,
initial sets and budget: only the choice of the next batch differs. Each peer's own query
code chooses from the very probabilities Loupe's model produced, through a thin adapter.

    python3 -m venv var/bench-venv
    .venv/bin/python benchmarks/peers.py --link var/bench-venv
    var/bench-venv/bin/pip install -r benchmarks/requirements-peers.txt
    var/bench-venv/bin/python benchmarks/peers.py [--seeds 10] [--datasets digits,digits-1-7]

The peers live in their own environment layered on Loupe's (``--link`` writes a ``.pth``
file there that makes ``.venv``'s packages, its CPU torch included, importable), so they
never enter ``.venv`` and never pull a torch of their own.

Peers: modAL's ``uncertainty_sampling`` (least confidence) and ``margin_sampling``,
scikit-activeml's ``UncertaintySampling`` (least_confident, margin_sampling), and
small-text's ``ClassBalancer(BreakingTies())`` (small-text >= 2.0).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.label_efficiency import (  # noqa: E402
    DIGITS,
    ROOT,
    inspection_arrays,
    platform_learner,
)
from ml.simulation import simulate_arrays  # noqa: E402
from ml.strategies import DEFAULT_STRATEGY, Strategy, get_strategy  # noqa: E402
from ml.synthetic import load_digits_arrays  # noqa: E402

DATASETS = [*DIGITS, "inspection"]

PEER_MODULES = {
    "modAL": "modAL.uncertainty",
    "scikit-activeml": "skactiveml.pool",
    "small-text": "small_text.query_strategies",
}


def missing_peers() -> list[str]:
    missing = []
    for name, module in PEER_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(name)
    if "small-text" not in missing:
        from small_text import query_strategies

        if not hasattr(query_strategies, "ClassBalancer"):
            missing.append("small-text>=2.0 (ClassBalancer)")
    return missing


class _FrozenEstimator:
    """An sklearn-style classifier whose 'inputs' are pool positions: it answers with the
    probabilities Loupe's model already produced, so every library sees the same model."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs
        self.classes_ = np.arange(probs.shape[1])

    def fit(self, *_args, **_kwargs):
        return self

    def predict_proba(self, x) -> np.ndarray:
        return self.probs[np.asarray(x)[:, 0].astype(np.int64)]

    def predict(self, x) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)


def _positions(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)[:, None]


class ModalStrategy(Strategy):
    def __init__(self, function: str) -> None:
        self.function = function
        self.name = f"modAL:{function.split('_')[0]}"

    def _select(self, inputs, batch_size, rng):
        from modAL import uncertainty

        np.random.seed(int(rng.integers(2**31)))  # modAL breaks ties with the global RNG
        query = getattr(uncertainty, self.function)
        picked = query(_FrozenEstimator(inputs.probs), _positions(inputs.n), n_instances=batch_size)
        picked = picked[0] if isinstance(picked, tuple) else picked
        picked = np.asarray(picked, dtype=np.int64)
        return picked, np.zeros(picked.shape[0])


class SkactivemlStrategy(Strategy):
    def __init__(self, method: str) -> None:
        self.method = method
        self.name = f"skactiveml:{method.split('_')[0]}"

    def _select(self, inputs, batch_size, rng):
        from skactiveml.base import SkactivemlClassifier
        from skactiveml.pool import UncertaintySampling

        probs = inputs.probs

        class Frozen(SkactivemlClassifier):
            def fit(self, X, y, sample_weight=None):
                return self

            def predict_proba(self, X):
                return probs[np.asarray(X)[:, 0].astype(np.int64)]

        clf = Frozen(classes=np.arange(probs.shape[1]), missing_label=np.nan)
        query = UncertaintySampling(method=self.method, random_state=int(rng.integers(2**31)))
        picked = query.query(
            _positions(inputs.n),
            np.full(inputs.n, np.nan),
            clf=clf,
            fit_clf=False,
            batch_size=batch_size,
        )
        return np.asarray(picked, dtype=np.int64), np.zeros(len(picked))


class SmallTextClassBalancer(Strategy):
    name = "small-text:class-balancer"

    def _select(self, inputs, batch_size, rng):
        from small_text.data import SklearnDataset
        from small_text.query_strategies import BreakingTies, ClassBalancer

        k, n = inputs.num_classes, inputs.n
        counts = np.asarray(inputs.labeled_class_counts, dtype=np.int64)
        # small-text wants the labeled items in the same dataset; only their labels'
        # histogram is used, so stand-ins with uniform probabilities carry them.
        y_labeled = np.repeat(np.arange(k), counts)
        m = y_labeled.shape[0]
        probs = np.concatenate([inputs.probs, np.full((m, k), 1.0 / k)])

        class Frozen(_FrozenEstimator):
            num_classes = k

            def predict_proba(self, dataset):
                return self.probs[np.asarray(dataset.x)[:, 0].astype(np.int64)]

            def predict(self, dataset, return_proba=False):
                p = self.predict_proba(dataset)
                return (p.argmax(axis=1), p) if return_proba else p.argmax(axis=1)

        labels = np.concatenate([np.zeros(n, int), y_labeled])
        dataset = SklearnDataset(_positions(n + m), labels, target_labels=np.arange(k))
        np.random.seed(int(rng.integers(2**31)))  # small-text samples with the global RNG
        picked = ClassBalancer(BreakingTies()).query(
            Frozen(probs), dataset, np.arange(n), np.arange(n, n + m), y_labeled, n=batch_size
        )
        return np.asarray(picked, dtype=np.int64), np.zeros(len(picked))


def link_environment(venv: Path) -> int:
    """Write a ``.pth`` file into ``venv`` pointing at this interpreter's site-packages."""
    import subprocess
    import sysconfig

    python = venv / "bin" / "python"
    if not python.exists():
        print(f"no virtual environment at {venv} (create it with python3 -m venv)", file=sys.stderr)
        return 2
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    target = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    pth = Path(target.stdout.strip()) / "loupe.pth"
    pth.write_text(sysconfig.get_paths()["purelib"] + "\n")
    print(f"wrote {pth}")
    return 0


def peer_strategies() -> list[Strategy]:
    return [
        ModalStrategy("uncertainty_sampling"),
        ModalStrategy("margin_sampling"),
        SkactivemlStrategy("least_confident"),
        SkactivemlStrategy("margin_sampling"),
        SmallTextClassBalancer(),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loupe's default strategy vs peers.")
    parser.add_argument("--datasets", default="digits,digits-1-7")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--items", type=int, default=2300, help="inspection tiles")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--link", metavar="VENV", help="make this venv see Loupe's packages")
    args = parser.parse_args(argv)
    if args.link:
        return link_environment(Path(args.link))
    missing = missing_peers()
    if missing:
        print(
            f"peer libraries missing: {', '.join(missing)}.\n"
            "Install them in a separate environment (never in .venv), see this file's "
            "docstring:\n  var/bench-venv/bin/pip install -r benchmarks/requirements-peers.txt\n"
            "and run this script with var/bench-venv/bin/python.",
            file=sys.stderr,
        )
        return 2
    strategies = [get_strategy("random"), get_strategy(DEFAULT_STRATEGY), *peer_strategies()]
    worst_margin = []
    for name in [d for d in args.datasets.split(",") if d]:
        if name not in DATASETS:
            print(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}", file=sys.stderr)
            return 2
        options, rare = {}, DIGITS.get(name)
        if name in DIGITS:
            x, y = load_digits_arrays(DIGITS[name], 0.05, seed=0)
        else:
            # Images with the platform's CNN recipe; the rarest class starts unlabeled.
            x, y, classes = inspection_arrays(
                args.items, args.image_size, ROOT / "var" / "benchmarks"
            )
            options["learner"] = platform_learner(len(classes), args.image_size)
            rare = (classes[int(np.argmin(np.bincount(y)))],)
            options["initial_without"] = [int(np.argmin(np.bincount(y)))]
        started = time.perf_counter()
        result = simulate_arrays(
            x,
            y,
            strategies=strategies,
            seeds=list(range(args.seeds)),
            initial=args.initial,
            batch=args.batch,
            rounds=args.rounds,
            stop_at_target=True,
            progress=not args.quiet,
            **options,
        )
        summary = result["labels_to_target_summary"]
        full = result["full_data"]
        print(
            f"\n{name} (rare {rare}), {args.seeds} seeds, budget "
            f"{args.initial + args.rounds * args.batch} labels, full-data balanced accuracy "
            f"{full['balanced_accuracy_mean']:.3f}; {time.perf_counter() - started:.0f} s"
        )
        header = f"{'strategy':<28} {'labels to 90% of full':>22} {'missed':>7} {'vs random':>10}"
        print(header)
        print("-" * len(header))
        for s in strategies:
            row = summary[s.name]
            ratio = row["mean"] / summary["random"]["mean"]
            tag = "  (loupe default)" if s.name == DEFAULT_STRATEGY else ""
            print(
                f"{s.name:<28} {row['mean']:>13.0f} ± {row['std']:<6.0f} "
                f"{row['missed']:>3}/{row['seeds']:<3} {ratio:>9.2f}x{tag}"
            )
        best_peer = min(summary[s.name]["mean"] for s in strategies[2:])
        ours = summary[DEFAULT_STRATEGY]["mean"]
        verdict = "matches or beats" if ours <= best_peer else "is BEHIND"
        print(f"loupe default ({ours:.0f}) {verdict} the best peer ({best_peer:.0f})")
        worst_margin.append(ours <= best_peer)
    return 0 if all(worst_margin) else 1


if __name__ == "__main__":
    raise SystemExit(main())

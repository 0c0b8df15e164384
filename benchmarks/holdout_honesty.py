"""Is a version's holdout figure honest? The epoch a training keeps, chosen on the holdout
it is then reported on, against the same training's last epoch.

    .venv/bin/python benchmarks/holdout_honesty.py                  # digits and inspection
    .venv/bin/python benchmarks/holdout_honesty.py --datasets digits --seeds 30

Per seed: a labeled set of ``--labels`` items trains the platform's recipe (the MLP on
digits, the small CNN on inspection tiles; class weighting "effective", at least 200 steps,
15 epochs), a stratified holdout of ``--holdout`` items is what the version reports on, and a large
untouched set (every other item) stands for the data the model will meet. Three ways to
end training, from the same seed:

- ``last epoch``: the full plan, the holdout only read at the end (Loupe's default);
- ``best epoch``: the epoch with the best holdout balanced accuracy kept, the full plan run;
- ``early stop``: the same, stopping after 5 epochs without a better one.

The table gives each one's balanced accuracy on the holdout and on the untouched set, the
gap between them, and its untouched accuracy against the last epoch's (mean and standard
error over seeds, paired by seed). The holdout and the untouched
set are both random draws of the same data, so a gap that differs from the last epoch's is
the optimism of choosing on the holdout: the figure a user reads is higher than what the
model does. No assert: the table is the result (about 5 minutes on one core).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from label_efficiency import inspection_arrays  # noqa: E402

from ml.metrics import balanced_accuracy  # noqa: E402
from ml.simulation.engine import stratified_split, torch_threads  # noqa: E402
from ml.synthetic import load_digits_arrays  # noqa: E402
from ml.training import TrainConfig, train_classifier  # noqa: E402

ENDINGS = {
    "last epoch": {"keep_best_epoch": False, "early_stopping_patience": None},
    "best epoch": {"keep_best_epoch": True, "early_stopping_patience": None},
    "early stop": {"keep_best_epoch": True, "early_stopping_patience": 5},
}


def dataset(name: str, args):
    """``(x, y, model_factory)`` of a dataset, as the platform would train it."""
    import torch

    from ml.models import MLP, SmallCNN

    if name == "digits":
        x, y = load_digits_arrays((3, 8), 0.05, seed=0)
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        k = int(y.max()) + 1
        return x, y, lambda seed: MLP(x.shape[1], k, hidden=128, seed=seed)
    x, y, names = inspection_arrays(args.items, args.image_size, args.cache)
    return x, y, lambda seed: SmallCNN(len(names), 3, args.image_size, seed=seed)


def run(name: str, args) -> dict[str, dict[str, list[float]]]:
    from ml.scoring import score

    x, y, factory = dataset(name, args)
    k = int(y.max()) + 1
    found: dict[str, dict[str, list[float]]] = {
        e: {"holdout": [], "untouched": []} for e in ENDINGS
    }
    for seed in range(args.seeds):
        # A stratified holdout, every class in it, as a project's holdout keeps.
        pool, holdout = stratified_split(y, args.holdout / len(y), seed)
        pool = np.random.default_rng([seed, 41]).permutation(pool)
        train, untouched = pool[: args.labels], pool[args.labels :]
        base = TrainConfig(
            epochs=15, min_steps=200, loss="ce", class_weighting="effective", num_classes=k
        )
        for ending, options in ENDINGS.items():
            config = replace(base, seed=seed, **options)
            with torch_threads(1):
                model = train_classifier(
                    factory(seed), x[train], y[train], val_x=x[holdout], val_y=y[holdout],
                    config=config,
                ).model  # fmt: skip
                for part, idx in (("holdout", holdout), ("untouched", untouched)):
                    predicted = score(model, x[idx]).probs.argmax(1)
                    found[ending][part].append(balanced_accuracy(y[idx], predicted, k))
        print(f"{name}: seed {seed + 1}/{args.seeds}", file=sys.stderr, flush=True)
    return found


def mean_se(values) -> str:
    v = np.asarray(values, dtype=np.float64)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return f"{v.mean():.3f} ± {se:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="digits,inspection")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--holdout", type=int, default=60)
    parser.add_argument("--items", type=int, default=1200, help="inspection tiles")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "benchmarks")
    args = parser.parse_args(argv)
    for name in [d for d in args.datasets.split(",") if d]:
        started = time.perf_counter()
        found = run(name, args)
        print(
            f"\n== {name}: {args.labels} training labels, a holdout of {args.holdout}, the rest"
            f" untouched; balanced accuracy, mean ± SE over {args.seeds} seeds"
            f" ({time.perf_counter() - started:.0f} s)"
        )
        print(
            f"{'training ends at':<17} {'holdout':>14} {'untouched':>14} {'gap':>14}"
            f" {'untouched vs last':>18}"
        )
        last = found["last epoch"]["untouched"]
        for ending, parts in found.items():
            gap = np.subtract(parts["holdout"], parts["untouched"])
            paired = np.subtract(parts["untouched"], last)
            marker = "  (default)" if ending == "last epoch" else ""
            print(
                f"{ending:<17} {mean_se(parts['holdout']):>14} {mean_se(parts['untouched']):>14}"
                f" {mean_se(gap):>14} {mean_se(paired) if ending != 'last epoch' else '':>18}"
                f"{marker}"
            )
        print(
            "gap: holdout minus untouched, paired per seed; a gap larger than the last"
            " epoch's is optimism from choosing on the holdout. untouched vs last: what keeping"
            " that epoch did to the accuracy on the untouched data."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training augmentation for image classification: the platform's CNN recipe trained on the
same labeled sets with each augmentation policy beside none, in one run.

    .venv/bin/python benchmarks/augmentation.py                     # inspection, 2 seeds
    .venv/bin/python benchmarks/augmentation.py --policies none,standard --sets random300,all \\
        --seeds 0,3 --epochs 15,30 --json var/runs/aug-a.json
    .venv/bin/python benchmarks/augmentation.py --merge var/runs/aug-a.json var/runs/aug-b.json

Data: the inspection tiles of ``benchmarks/label_efficiency.py`` (64x64 RGB, good : scratch :
dent : stain = 87 : 4 : 5 : 3). Each seed takes the simulator's stratified 25% holdout; the
labeled sets are drawn from the rest:
  randomN   N items drawn uniformly (what random sampling has labeled at N)
  balancedN N items with each defect class at up to 11% (what the default has collected)
  all       the whole pool (the full-data reference that label efficiency's target is 90% of)
Policies (``ml.augment``): ``none``; ``light`` (shift and light changes only: safe for any
image, text and digits included); ``standard`` (horizontal flip, ±10° rotation, shift,
light: ``ml.augment.Augment``'s own defaults); ``dihedral`` (``standard`` plus vertical flips
and quarter turns, for parts photographed from above in any orientation). A classification
project trains with none unless its ``augmentations`` setting turns some on.
Tables: balanced accuracy on the holdout (mean ± standard error over the trainings: data
seeds, times ``--train-seeds`` when given) per set, policy and epochs, with its difference to
``none`` on the same seeds and set; and the recall per
class, with the holdout's items per class. No assert: the table is the result (one training
of 300 labels takes about 40 s on one core).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from label_efficiency import inspection_arrays, mean_se, platform_learner  # noqa: E402

from ml.augment import POLICIES  # noqa: E402
from ml.metrics import balanced_accuracy, confusion_matrix  # noqa: E402
from ml.simulation.engine import stratified_split  # noqa: E402

DEFECT_SHARE = 0.11


def labeled_set(name: str, pool: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Positions of the labeled set ``name`` drawn from ``pool`` for ``seed``."""
    rng = np.random.default_rng([seed, 11])
    if name == "all":
        return pool
    if name.startswith("random"):
        return np.sort(rng.choice(pool, size=int(name[len("random") :]), replace=False))
    if name.startswith("balanced"):
        size = int(name[len("balanced") :])
        counts = np.bincount(y[pool])
        common = int(np.argmax(counts))
        chosen = []
        for c in range(len(counts)):
            if c == common:
                continue
            members = pool[y[pool] == c]
            take = min(len(members), int(round(DEFECT_SHARE * size)))
            chosen.append(rng.choice(members, size=take, replace=False))
        rest = size - sum(len(c) for c in chosen)
        chosen.append(rng.choice(pool[y[pool] == common], size=rest, replace=False))
        return np.sort(np.concatenate(chosen))
    raise ValueError(f"unknown labeled set: {name}")


def run(args) -> list[dict]:
    x, y, class_names = inspection_arrays(args.items, args.image_size, args.cache)
    y = np.asarray(y)
    learner = platform_learner(len(class_names), args.image_size)
    rows = []
    for seed in args.seeds:
        pool, hold = stratified_split(y, 0.25, seed)
        for set_name in args.sets:
            labeled = labeled_set(set_name, pool, y, seed)
            for epochs in args.epochs:
                for policy, train_seed in itertools.product(
                    args.policies, args.train_seeds or [seed]
                ):
                    learner.train_config = replace(
                        learner.train_config, epochs=epochs, augment=POLICIES[policy]()
                    )
                    started = time.perf_counter()
                    model = learner.fit(x[labeled], y[labeled], seed=train_seed)
                    pred = learner.score(model, x[hold]).probs.argmax(axis=1)
                    truth = y[hold]
                    cm = confusion_matrix(truth, pred, len(class_names))
                    recall = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).tolist()
                    row = {
                        "seed": seed,
                        "train_seed": train_seed,
                        "set": set_name,
                        "labels": int(len(labeled)),
                        "epochs": epochs,
                        "policy": policy,
                        "balanced_accuracy": balanced_accuracy(truth, pred, len(class_names)),
                        "recall": recall,
                        "holdout_per_class": np.bincount(
                            truth, minlength=len(class_names)
                        ).tolist(),
                        "seconds": time.perf_counter() - started,
                    }
                    rows.append(row)
                    if not args.quiet:
                        print(
                            f"seed {seed} {set_name} {epochs} epochs {policy} "
                            f"(training seed {train_seed}): "
                            f"{row['balanced_accuracy']:.3f} ({row['seconds']:.0f} s)",
                            flush=True,
                        )
    return [{"class_names": class_names, **r} for r in rows]


def _mean_se(values) -> str:
    mean, se = mean_se(values)
    return f"{mean:.3f} ± {se:.3f}"


def tables(rows: list[dict]) -> None:
    names = rows[0]["class_names"]
    keys = sorted({(r["set"], r["epochs"]) for r in rows}, key=lambda k: (k[0], k[1]))
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    print(
        "\n| labeled set | epochs | policy | trainings | balanced accuracy | minus none, paired | "
        + " | ".join(f"recall {n}" for n in names)
        + " |"
    )
    print("|---" * (6 + len(names)) + "|")
    for set_name, epochs in keys:
        cell = {
            (r["policy"], (r["seed"], r.get("train_seed", r["seed"]))): r
            for r in rows
            if (r["set"], r["epochs"]) == (set_name, epochs)
        }
        for policy in policies:
            mine = sorted(s for p, s in cell if p == policy)
            if not mine:
                continue
            bacc = [cell[(policy, s)]["balanced_accuracy"] for s in mine]
            paired = [
                cell[(policy, s)]["balanced_accuracy"] - cell[("none", s)]["balanced_accuracy"]
                for s in mine
                if ("none", s) in cell
            ]
            diff = _mean_se(paired) if policy != "none" and paired else "—"
            recalls = np.mean([cell[(policy, s)]["recall"] for s in mine], axis=0)
            labels = cell[(policy, mine[0])]["labels"]
            print(
                f"| {set_name} ({labels}) | {epochs} | {policy} | {len(mine)} | {_mean_se(bacc)} | "
                f"{diff} | " + " | ".join(f"{v:.2f}" for v in recalls) + " |"
            )
    holdout = rows[0]["holdout_per_class"]
    print(
        "\nholdout items per class (each seed): "
        + ", ".join(f"{n} {c}" for n, c in zip(names, holdout, strict=True))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Augmentation policies beside none.")
    parser.add_argument("--policies", default="none,light,standard,dihedral")
    parser.add_argument("--sets", default="random300,balanced300,all")
    parser.add_argument("--seeds", default="0,3")
    parser.add_argument("--epochs", default="15")
    parser.add_argument(
        "--train-seeds",
        default="",
        help="train each cell once per seed listed (its mean ± SE then counts training "
        "noise); default: once, with the data seed",
    )
    parser.add_argument("--items", type=int, default=2300)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "benchmarks")
    parser.add_argument("--json", help="also write the raw rows here")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="print saved runs' tables")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.merge:
        rows = [r for path in args.merge for r in json.loads(Path(path).read_text())]
    else:
        args.policies = [p for p in args.policies.split(",") if p]
        unknown = [p for p in args.policies if p not in POLICIES]
        if unknown:
            print(f"unknown policies: {', '.join(unknown)}", file=sys.stderr)
            return 2
        args.sets = [s for s in args.sets.split(",") if s]
        args.seeds = [int(s) for s in args.seeds.split(",") if s]
        args.epochs = [int(e) for e in args.epochs.split(",") if e]
        args.train_seeds = [int(s) for s in args.train_seeds.split(",") if s]
        rows = run(args)
        if args.json:
            Path(args.json).write_text(json.dumps(rows))
    tables(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Which strategy finds a class nobody has labeled yet? One round, many strategies, beside
random picks, on the inspection images with the platform's CNN recipe.

    .venv/bin/python benchmarks/unseen_class.py                 # 3 seeds, batch 20
    .venv/bin/python benchmarks/unseen_class.py --seeds 5 --batch 40
    .venv/bin/python benchmarks/unseen_class.py --seen 1       # the class has one label

Per seed: 20 initial labels drawn without the rarest class (stain, 3% of the tiles), the
CNN trained on them as a new project trains, then every strategy picks one batch from the
same pool with the same model. With ``--seen K`` the initial labels hold K of the rare
class instead: a class just found, which must now reach a few labels. The table counts the
rare-class items among the picks (mean and per seed) and the ratio to random picks of the
same size. `discovery` and `coreset` are also run on model-free appearance features (8x8
colour thumbnails, colour spread and high-pass energy), which do not depend on what the
model has learned.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from label_efficiency import inspection_arrays, platform_learner  # noqa: E402

from ml.strategies import AcquisitionInputs, get_strategy  # noqa: E402

MODEL_STRATEGIES = (
    "margin",
    "least_confidence",
    "entropy",
    "badge",
    "coreset",
    "hybrid",
    "class_balanced",
    "discovery",
    "adaptive",
)
APPEARANCE_STRATEGIES = ("discovery", "coreset")


def appearance(x):
    """Model-free features of images ``(n, 3, H, W)``: 8x8 colour thumbnails, the colour
    spread and the high-pass energy per channel."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(x).float()
    thumbs = F.adaptive_avg_pool2d(x, 8).flatten(1)
    spread = x.flatten(2).std(dim=2)
    high = (x - F.avg_pool2d(x, 5, 1, 2)).abs().flatten(2).mean(dim=2)
    return torch.cat([thumbs, 4 * spread, 8 * high], 1).numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument(
        "--seen", type=int, default=0, help="labels of the rare class in the initial set"
    )
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--items", type=int, default=2300)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "benchmarks")
    args = parser.parse_args(argv)

    x, y, names = inspection_arrays(args.items, args.image_size, args.cache)
    rare = int(np.argmin(np.bincount(y)))
    features = appearance(x)
    learner = platform_learner(len(names), args.image_size)
    found: dict[str, list[int]] = {}
    started = time.perf_counter()
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        initial = np.concatenate(
            [
                rng.choice(np.flatnonzero(y != rare), args.initial - args.seen, replace=False),
                rng.choice(np.flatnonzero(y == rare), args.seen, replace=False),
            ]
        )
        pool = np.setdiff1d(np.arange(len(y)), initial)
        model = learner.fit(x[initial], y[initial], seed=seed)
        out = learner.score(model, x)
        counts = np.bincount(y[initial], minlength=len(names))

        def count(picked, name, pool=pool):
            found.setdefault(name, []).append(int((y[pool[picked]] == rare).sum()))

        for name in MODEL_STRATEGIES:
            inputs = AcquisitionInputs(
                probs=out.probs[pool],
                embeddings=out.embeddings[pool],
                labeled_embeddings=out.embeddings[initial],
                labeled_class_counts=counts,
            )
            count(get_strategy(name).select(inputs, args.batch, seed=seed).indices, name)
        for name in APPEARANCE_STRATEGIES:
            inputs = AcquisitionInputs(
                probs=out.probs[pool],
                embeddings=features[pool],
                labeled_embeddings=features[initial],
            )
            picked = get_strategy(name).select(inputs, args.batch, seed=seed).indices
            count(picked, f"{name} (appearance)")
        count(rng.choice(len(pool), args.batch, replace=False), "random")
        print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    share = float(np.mean(y == rare))
    print(
        f"== unseen class: inspection tiles ({len(y)}, {args.image_size} px), rare class"
        f" '{names[rare]}' ({share:.1%} of the tiles) with {args.seen} of {args.initial}"
        f" initial labels; one batch of {args.batch} per strategy, same model and pool,"
        f" {args.seeds} seeds"
    )
    random_mean = float(np.mean(found["random"]))
    print(f"{'strategy':<26} {'rare picks (mean)':>18}  {'vs random':>9}  per seed")
    for name, values in sorted(found.items(), key=lambda kv: -np.mean(kv[1])):
        ratio = np.mean(values) / random_mean if random_mean else float("nan")
        print(f"{name:<26} {np.mean(values):>18.2f}  {ratio:>8.2f}x  {values}")
    print(
        f"expected at random: {args.batch * share:.2f} per batch. A strategy above random"
        " finds an unseen class sooner; below random, it waits for random picks to find it."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

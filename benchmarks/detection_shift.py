"""Covariate shift for the detector: does page acquisition reach for the scanned pages?

A project starts with clean printed score pages only, then its pool fills with clean and
scanned ones (blur, grey paper, uneven light, a slight shift and rotation:
``ml.synthetic_scores.render_page(scanned=True)``). The detector is trained on the clean
initial pages with the blur and light augmentations turned off (``--blur 0 --light 0``, the
defaults here), so the scanned pages are really new to it. Then ``--rounds`` rounds of
``--batch`` pages are picked from the pool by each strategy (the default, ``box_mean``,
beside random), the detector retrained from scratch on the labeled pages each round. Per
round it prints the share of scanned pages among that round's picks (half the pool is
scanned, so random picks about 0.5) and mAP@0.5 on a scanned holdout and on a clean
holdout, mean ± standard error over the seeds. All arms of a seed share the pages, the
splits and the round-0 model.

    nice -n 15 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/detection_shift.py \\
        --seeds 3 --json benchmarks/results/detection_shift.json      # ~15 min, one core
    .venv/bin/python benchmarks/detection_shift.py --results benchmarks/results/detection_shift.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.detection_augment import DetectionAugment  # noqa: E402
from ml.detection_training import DetectionTrainConfig  # noqa: E402
from ml.simulation.detection import (  # noqa: E402
    BASELINE,
    DEFAULT_DETECTION_STRATEGY,
    detection_strategy,
    load_pages,
)
from ml.strategies import AcquisitionInputs, select_batch  # noqa: E402
from ml.tasks.object_detection import ObjectDetectionSpec  # noqa: E402


@dataclass(frozen=True)
class ShiftSplit:
    """Page positions of one seed: ``initial`` (clean only), ``pool`` (clean and scanned),
    ``holdout_clean`` and ``holdout_scanned``; all sorted and pairwise disjoint."""

    initial: np.ndarray
    pool: np.ndarray
    holdout_clean: np.ndarray
    holdout_scanned: np.ndarray


def shift_split(
    scanned: np.ndarray, *, initial: int, pool: int, holdout: int, seed: int
) -> ShiftSplit:
    """Splits pages flagged ``scanned`` (bool per page) for the shift case: ``initial``
    clean pages to start from, a pool of ``pool`` pages, half clean and half scanned (the
    odd page clean), and ``holdout`` clean and ``holdout`` scanned pages to measure on.
    Pages left over are unused. Raises ValueError when there are too few of a kind."""
    scanned = np.asarray(scanned, dtype=bool)
    rng = np.random.default_rng([seed, 61])
    clean_pages = rng.permutation(np.flatnonzero(~scanned))
    scanned_pages = rng.permutation(np.flatnonzero(scanned))
    pool_scanned = pool // 2
    pool_clean = pool - pool_scanned
    if len(clean_pages) < initial + pool_clean + holdout:
        raise ValueError(f"need {initial + pool_clean + holdout} clean pages")
    if len(scanned_pages) < pool_scanned + holdout:
        raise ValueError(f"need {pool_scanned + holdout} scanned pages")
    return ShiftSplit(
        initial=np.sort(clean_pages[:initial]),
        pool=np.sort(
            np.concatenate(
                [
                    clean_pages[initial : initial + pool_clean],
                    scanned_pages[:pool_scanned],
                ]
            )
        ),
        holdout_clean=np.sort(clean_pages[initial + pool_clean :][:holdout]),
        holdout_scanned=np.sort(scanned_pages[pool_scanned:][:holdout]),
    )


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error over the seeds (0 for one seed), NaNs left out."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if not v.size:
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
    return float(v.mean()), se


def score_pages_with_shift(args) -> Path:
    """The pages on disk (written once under ``--cache``): enough for the split, half of
    them scanned."""
    from ml.synthetic_scores import make_score_pages

    per_kind = args.initial + (args.pool + 1) // 2 + args.holdout
    n = 2 * per_kind
    root = args.cache / f"score-pages-shift-{n}-{args.page_width}x{args.page_height}"
    if not (root / "annotations.json").exists():
        make_score_pages(
            root, pages=n, width=args.page_width, height=args.page_height, scanned_fraction=0.5
        )
    return root


class _Shift:
    """Trains and measures on one set of pages with the benchmark's settings."""

    def __init__(self, root: Path, args):
        self.pages, self.targets, self.classes, names = load_pages(root)
        images = json.loads((root / "annotations.json").read_text())["images"]
        flags = {image["file_name"]: bool(image.get("scanned")) for image in images}
        self.scanned = np.array([flags[name] for name in names], dtype=bool)
        self.spec = ObjectDetectionSpec()
        self.args = args
        self.augment = DetectionAugment(blur=args.blur, light=args.light)

    def fit(self, positions, *, seed: int):
        model = self.spec.build_model(num_classes=len(self.classes), seed=seed)
        config = DetectionTrainConfig(
            steps=self.args.steps, tile_size=self.args.tile_size, seed=seed, augment=self.augment
        )
        x = [self.pages[i] for i in positions]
        y = [self.targets[i] for i in positions]
        return self.spec.train(model, x, y, config=config).model

    def map50(self, model, positions) -> float:
        predictions = self.spec.predict(model, [self.pages[i] for i in positions])
        truth = [self.targets[i] for i in positions]
        return float(self.spec.evaluate(truth, predictions, class_names=self.classes).value)

    def inputs(self, model, positions) -> AcquisitionInputs:
        from ml.artifacts import ItemArrays

        predictions = self.spec.predict(model, [self.pages[i] for i in positions])
        scored = ItemArrays(
            item_ids=np.asarray(positions, dtype=np.int64),
            scores=predictions.scores,
            embeddings=predictions.embeddings,
            extras=predictions.extras,
        )
        return self.spec.to_acquisition_inputs(scored)


def run_seed(shift: _Shift, arms: list[str], seed: int, say) -> dict:
    """Per arm the rounds of one seed: labeled pages, scanned among them, the scanned share
    of each round's picks and mAP@0.5 on the two holdouts."""
    args = shift.args
    split = shift_split(
        shift.scanned, initial=args.initial, pool=args.pool, holdout=args.holdout, seed=seed
    )
    first = shift.fit(split.initial, seed=seed * 1009)
    first_row = {
        "pages": len(split.initial),
        "scanned_labeled": 0,
        "picked_scanned_share": None,
        "map50_scanned": shift.map50(first, split.holdout_scanned),
        "map50_clean": shift.map50(first, split.holdout_clean),
    }
    say(
        f"seed {seed} round 0: mAP@0.5 scanned {first_row['map50_scanned']:.3f}, "
        f"clean {first_row['map50_clean']:.3f}"
    )
    out = {}
    for arm in arms:
        strategy = detection_strategy(arm)
        labeled = list(split.initial)
        unlabeled = list(split.pool)
        model, rows = first, [first_row]
        for round_no in range(1, args.rounds + 1):
            if arm == BASELINE:
                inputs = AcquisitionInputs(item_scores=np.zeros(len(unlabeled)))
            else:
                inputs = shift.inputs(model, unlabeled)
            chosen = select_batch(
                strategy,
                inputs,
                args.batch,
                control_fraction=args.control_fraction,
                seed=seed * 7919 + round_no,
            )
            picked = [unlabeled[i] for i in chosen.indices]
            unlabeled = [p for p in unlabeled if p not in set(picked)]
            labeled += picked
            model = shift.fit(labeled, seed=seed * 1009 + round_no)
            rows.append(
                {
                    "pages": len(labeled),
                    "scanned_labeled": int(shift.scanned[labeled].sum()),
                    "picked_scanned_share": float(shift.scanned[picked].mean()),
                    "map50_scanned": shift.map50(model, split.holdout_scanned),
                    "map50_clean": shift.map50(model, split.holdout_clean),
                }
            )
            say(
                f"seed {seed} {arm:>9} round {round_no}: picks scanned "
                f"{rows[-1]['picked_scanned_share']:.2f}, mAP@0.5 scanned "
                f"{rows[-1]['map50_scanned']:.3f}, clean {rows[-1]['map50_clean']:.3f}"
            )
        out[arm] = rows
    return out


def run(args) -> dict:
    root = score_pages_with_shift(args)
    shift = _Shift(root, args)
    arms = [a for a in args.strategies.split(",") if a]
    say = (lambda text: None) if args.quiet else (lambda t: print(t, file=sys.stderr, flush=True))
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    per_seed = [run_seed(shift, arms, seed, say) for seed in range(args.seeds)]
    config = {
        k: getattr(args, k)
        for k in (
            "seeds", "initial", "pool", "holdout", "batch", "rounds", "steps", "tile_size",
            "blur", "light", "control_fraction", "page_width", "page_height",
        )
    }  # fmt: skip
    return {
        "config": config,
        "root": str(root),
        "n_boxes": int(sum(len(t["labels"]) for t in shift.targets)),
        "n_pages": len(shift.pages),
        "strategies": arms,
        "default_strategy": DEFAULT_DETECTION_STRATEGY,
        "per_seed": per_seed,
        "seconds": time.perf_counter() - started,
    }


def print_tables(result: dict) -> None:
    """The per-round table (mean ± SE over the seeds) and a one-line summary per arm."""
    cfg, arms = result["config"], result["strategies"]
    print(
        f"shift: {cfg['page_width']}x{cfg['page_height']} score pages; start {cfg['initial']} "
        f"clean pages; pool {cfg['pool']} pages (half scanned); holdouts {cfg['holdout']} "
        f"clean + {cfg['holdout']} scanned; {cfg['rounds']} rounds of {cfg['batch']}; "
        f"{cfg['steps']} steps per fit from scratch; augment blur {cfg['blur']} light "
        f"{cfg['light']}; {cfg['seeds']} seeds, {result['seconds']:.0f} s"
    )
    print()
    print(
        "| round | pages | strategy | scanned share of the round's picks | scanned pages "
        "labeled | mAP@0.5 scanned holdout | mAP@0.5 clean holdout |"
    )
    print("|---|---|---|---|---|---|---|")

    def cell(rows, key, digits=3):
        values = [np.nan if r[key] is None else r[key] for r in rows]
        if all(np.isnan(values)):
            return "-"
        m, se = mean_se(values)
        return f"{m:.{digits}f} ± {se:.{digits}f}"

    seeds = result["per_seed"]
    for round_no in range(cfg["rounds"] + 1):
        for arm in arms if round_no else arms[:1]:
            rows = [s[arm][round_no] for s in seeds]
            name = "all (clean start)" if not round_no else arm
            if round_no and arm == result["default_strategy"]:
                name += " (default)"
            print(
                f"| {round_no} | {rows[0]['pages']} | {name} | "
                f"{cell(rows, 'picked_scanned_share', 2)} | {cell(rows, 'scanned_labeled', 1)} "
                f"| {cell(rows, 'map50_scanned')} | {cell(rows, 'map50_clean')} |"
            )
    print()
    for arm in arms:
        share = [np.mean([r["picked_scanned_share"] for r in s[arm][1:]]) for s in seeds]
        scanned = [np.mean([r["map50_scanned"] for r in s[arm][1:]]) for s in seeds]
        clean = [np.mean([r["map50_clean"] for r in s[arm][1:]]) for s in seeds]
        (sm, sse), (am, ase), (cm, cse) = mean_se(share), mean_se(scanned), mean_se(clean)
        print(
            f"{arm:>9}: scanned share of picks {sm:.2f} ± {sse:.2f}; mean over rounds 1-"
            f"{cfg['rounds']} mAP@0.5 scanned {am:.3f} ± {ase:.3f}, clean {cm:.3f} ± {cse:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", default=f"{BASELINE},{DEFAULT_DETECTION_STRATEGY}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--initial", type=int, default=4, help="clean pages to start from")
    parser.add_argument("--pool", type=int, default=40, help="pool pages, half scanned")
    parser.add_argument("--holdout", type=int, default=8, help="pages per holdout (each kind)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="training steps per fit")
    parser.add_argument("--tile-size", type=int, default=128, help="training crop size")
    parser.add_argument("--blur", type=float, default=0.0, help="DetectionAugment.blur")
    parser.add_argument("--light", type=float, default=0.0, help="DetectionAugment.light")
    parser.add_argument("--control-fraction", type=float, default=0.1)
    parser.add_argument("--page-width", type=int, default=512)
    parser.add_argument("--page-height", type=int, default=384)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "benchmarks")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--results", help="print the tables of a saved --json file")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.results:
        result = json.loads(Path(args.results).read_text())
    else:
        unknown = [a for a in args.strategies.split(",") if a]
        for arm in unknown:
            detection_strategy(arm)  # ValueError names the choices
        result = run(args)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=1))
    print_tables(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

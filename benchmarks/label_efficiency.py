"""Label efficiency: the whole learning curve of each strategy beside random sampling, on
the same seeds, holdouts, initial sets and model, in one run.

    .venv/bin/python benchmarks/label_efficiency.py                       # digits + images
    .venv/bin/python benchmarks/label_efficiency.py --datasets inspection --seeds 3
    .venv/bin/python benchmarks/label_efficiency.py --strategies random,hybrid,adaptive \\
        --datasets digits,digits-1-7,digits-0-6 --seeds 10 --rounds 30
    .venv/bin/python benchmarks/label_efficiency.py --task pair_verification --seeds 3
    .venv/bin/python benchmarks/label_efficiency.py --merge a.json b.json   # runs split by seed

Datasets (all class-imbalanced):
  digits       sklearn's digits (MLP), rare 3 and 8 kept at 5%, about 20:1
  digits-1-7   sklearn's digits (MLP), rare 1 and 7 (they look alike)
  digits-0-6   sklearn's digits (MLP), rare 0 and 6 (held out: never used for a choice)
  digits-absent  as digits, with an 11th class declared that no item has (a class a
               project names before any such item exists)
  inspection   synthetic inspection tiles (ml.synthetic.make_inspection_dataset), 64x64 RGB,
               good : scratch : dent : stain = 87 : 4 : 5 : 3, trained with the platform's
               recipe: SmallCNN, 15 epochs and at least 200 steps, effective-number class
               weights, cross-entropy, no augmentation; each round fine-tunes the previous
               round's model for 100 steps, and rounds 0, 5, 10, ... train from scratch
               (`--from-scratch`: every round). The rarest class (stain) is kept
               out of the initial set: a defect type nobody has labeled yet, which the
               strategy must find.

Every batch holds the platform's default random control slice (10%, `--control-fraction`).
Tables, per dataset:
  0. per seed, the full-data reference: the whole pool trained ``--full-data-fits`` times
     (3) with different training seeds, their mean (the target is 90% of it) and range.
     ``--reference-only`` runs only these trainings; ``--merge`` adds them to runs of the
     same seeds, so a reference can be made more precise without rerunning the curves;
  1. balanced accuracy on the holdout per budget (mean ± standard error over seeds), and
     the recall of the rarest class per budget;
  2. per strategy: labels to 90% of the seed's full-data reference (a seed that never
     reaches it counts as the whole budget, so a ratio is conservative), the area under the
     curve (mean balanced accuracy over the budgets), and the budgets where it is behind
     random by more than one standard error of the paired difference;
  3. class discovery: batches until the class kept out of the initial set has 5 labels,
     and, per batch of the default strategy, classes found, the rare-class share of the
     picks and the adaptive mix.
Targets (exit status 1 when missed): the default is never behind random by more than one
standard error, and needs at most half random's labels to reach the target.

``--task pair_verification`` measures pair labeling instead (``ml.simulation.pairs``): the
default pair strategy (``mixed``, pairs mined from the siamese model's embedding) beside
random pairs, on synthetic face-like identities with look-alikes
(``ml.synthetic_faces``, ``--identities`` x ``--images-per-identity``). Each seed holds out
whole identities, whose balanced same/different pairs measure the ROC AUC. Tables: ROC AUC
per budget (mean ± standard error over seeds); per strategy the labeled pairs to reach
``0.5 + 0.9 * (full - 0.5)`` of each seed's own full-data AUC (a miss counts as the whole
budget), the same read off the mean curve, the area under the curve, the budgets where it
is behind random by more than one standard error of the paired difference, and the EER at
the last budget. Same targets as above, on labeled pairs. ``--pair-strategy adaptive`` runs
the platform's ``pair_adaptive`` mix (pair_mixed and random pairs among the mined
candidates, re-weighted by what their labeled picks taught) and prints its split per batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.augment import POLICIES  # noqa: E402
from ml.simulation import SimulationConfig, image_learner, simulate_arrays  # noqa: E402
from ml.simulation.pairs import DEFAULT_PAIR_STRATEGY  # noqa: E402
from ml.simulation.report import censored_summary, labels_to_target  # noqa: E402
from ml.strategies import DEFAULT_STRATEGY, available  # noqa: E402
from ml.synthetic import load_digits_arrays, make_inspection_dataset  # noqa: E402
from ml.training import TrainConfig  # noqa: E402

DIGITS = {
    "digits": (3, 8),
    "digits-1-7": (1, 7),
    "digits-0-6": (0, 6),
    "digits-absent": (3, 8),
}
# Datasets whose project declares one class more than the data holds.
ABSENT_CLASS = {"digits-absent": "declared, no item"}
INSPECTION_SHARES = {"good": 0.87, "scratch": 0.04, "dent": 0.05, "stain": 0.03}
DATASETS = [*DIGITS, "inspection"]
DISCOVERY_LABELS = 5
TASKS = ("classification", "pair_verification", "object_detection")
# Per-task defaults of the options both tasks share (None on the command line).
TASK_DEFAULTS = {
    "classification": {"initial": 20, "batch": 20, "rounds": 15, "image_size": 64},
    "pair_verification": {"initial": 20, "batch": 40, "rounds": 12, "image_size": 32},
    "object_detection": {"initial": 2, "batch": 2, "rounds": 4, "image_size": None},
}


def inspection_arrays(n_items: int, image_size: int, cache: Path):
    """The inspection tiles as tensors (written once under ``cache``, then reused)."""
    from ml.data import ImageFolderDataset, load_tensors

    root = cache / f"inspection-{n_items}-{image_size}"
    if not (root / "manifest.csv").exists():
        counts = {c: int(round(share * n_items)) for c, share in INSPECTION_SHARES.items()}
        make_inspection_dataset(root, image_size=image_size, class_counts=counts, seed=0)
    dataset = ImageFolderDataset(root, image_size=image_size, mode="RGB")
    x, y = load_tensors(dataset)
    return x, y, list(dataset.classes)


# A project's model versions fine-tune the previous one for this many steps, and one in
# this many trains from scratch (the defaults of LOUPE_WARM_START_STEPS and
# LOUPE_FULL_RETRAIN_EVERY in platform/config/settings/loupe.py).
PLATFORM_WARM_START_STEPS = 100
PLATFORM_FULL_RETRAIN_EVERY = 5


def platform_learner(
    num_classes: int,
    image_size: int,
    augment: str = "none",
    *,
    warm_start: bool = True,
    full_retrain_every: int = PLATFORM_FULL_RETRAIN_EVERY,
):
    """The CNN and training recipe a new Loupe project uses (its default settings): each
    round fine-tunes the previous round's model, one round in 5 trains from scratch; with
    the augmentation policy ``augment`` of `ml.augment.POLICIES` (a project's default:
    none). ``warm_start=False`` trains every round from scratch; ``full_retrain_every``
    changes how often a warm-started run retrains from scratch (0: only the first round)."""
    config = TrainConfig(
        epochs=15,
        loss="ce",
        class_weighting="effective",
        num_classes=num_classes,
        augment=POLICIES[augment](),
    )
    learner = image_learner(
        num_classes, in_channels=3, image_size=image_size, train_config=config, min_steps=200
    )
    if warm_start:
        learner.warm_start_steps = PLATFORM_WARM_START_STEPS
        learner.full_retrain_every = full_retrain_every
    return learner


def run_dataset(name: str, args) -> dict:
    options = {}
    if name in DIGITS:
        x, y = load_digits_arrays(DIGITS[name], args.rare_fraction, seed=0)
        class_names = [str(c) for c in range(int(y.max()) + 1)]
        if name in ABSENT_CLASS:
            class_names.append(ABSENT_CLASS[name])
        rare = list(DIGITS[name])
    else:
        x, y, class_names = inspection_arrays(args.items, args.image_size, args.cache)
        options["learner"] = platform_learner(
            len(class_names),
            args.image_size,
            args.augment,
            warm_start=not args.from_scratch,
            full_retrain_every=args.full_retrain_every,
        )
        rarest = int(np.argmin(np.bincount(y)))
        options["initial_without"] = [rarest]
        rare = [rarest]
    started = time.perf_counter()
    result = simulate_arrays(
        x,
        y,
        strategies=args.strategies,
        seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
        initial=args.initial,
        batch=args.batch,
        rounds=args.rounds,
        holdout_fraction=args.holdout,
        target_fraction=args.target,
        control_fraction=args.control_fraction,
        temperature_scaling=args.temperature_scaling,
        full_data_fits=args.full_data_fits,
        class_names=class_names,
        progress=not args.quiet,
        **options,
    )
    result["seconds"] = time.perf_counter() - started
    result["rare_classes"] = rare
    return result


def _runs(result: dict, strategy: str) -> list[dict]:
    return result["curves"][strategy]["per_seed"]


def _matrix(result: dict, strategy: str, key, width: int) -> np.ndarray:
    """(seeds, budgets) of a per-round figure; a seed's curve is as long as the budget."""
    rows = [
        [key(run, i) for i in range(len(run["labels"]))][:width] for run in _runs(result, strategy)
    ]
    return np.array([r + [np.nan] * (width - len(r)) for r in rows], dtype=np.float64)


def curve_tables(name: str, result: dict, args) -> dict:
    strategies = result["strategies"]
    labels = _runs(result, strategies[0])[0]["labels"]
    width = len(labels)
    rare = result["rare_classes"][0]
    class_names = result["dataset"]["class_names"]
    bacc = {
        s: _matrix(result, s, lambda r, i: r["balanced_accuracy"][i], width) for s in strategies
    }
    recall = {s: _matrix(result, s, lambda r, i: r["recall"][i][rare], width) for s in strategies}
    seeds = bacc[strategies[0]].shape[0]

    def cell(m: np.ndarray, j: int) -> str:
        col = m[:, j]
        se = col.std(ddof=1) / np.sqrt(len(col)) if len(col) > 1 else 0.0
        return f"{col.mean():.3f}±{se:.3f}"

    col = max(13, *(len(s) + 1 for s in strategies))
    for title, data in (
        ("balanced accuracy on the holdout (mean ± standard error)", bacc),
        (f"recall of the rarest class, {class_names[rare]!r}", recall),
    ):
        print(f"\n{title}, {seeds} seeds")
        print(f"{'labels':>7} " + " ".join(f"{s:>{col}}" for s in strategies))
        for j, n in enumerate(labels):
            print(f"{n:>7} " + " ".join(f"{cell(data[s], j):>{col}}" for s in strategies))
    return {"bacc": bacc, "labels": labels}


def summary_table(result: dict, curves: dict, args) -> tuple[bool | None, bool | None]:
    strategies = result["strategies"]
    summary = result["labels_to_target_summary"]
    base = summary.get("random")
    bacc, labels = curves["bacc"], curves["labels"]
    print(
        f"\n{'strategy':<20} {'labels to target':>17} {'missed':>7} {'vs random':>10} "
        f"{'AUC':>13} {'behind random at':>18}"
    )
    behind_default = None
    for s in strategies:
        t = summary[s]
        ratio = t["mean"] / base["mean"] if base and base["mean"] else float("nan")
        auc = np.nanmean(bacc[s], axis=1)
        auc_se = auc.std(ddof=1) / np.sqrt(len(auc)) if len(auc) > 1 else 0.0
        behind = []
        if "random" in bacc and s != "random":
            diff = bacc[s] - bacc["random"]
            for j, n in enumerate(labels):
                d = diff[:, j]
                se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
                if d.mean() < -se:
                    behind.append(str(n))
        if s == DEFAULT_STRATEGY:
            behind_default = behind
        marker = "  (default)" if s == DEFAULT_STRATEGY else ""
        print(
            f"{s:<20} {t['mean']:>8.0f} ± {t['std']:<6.0f} {t['missed']:>3}/{t['seeds']:<3} "
            f"{ratio:>9.2f}x {auc.mean():>6.3f}±{auc_se:.3f} "
            f"{(','.join(behind) or '-') if s != 'random' else '':>18}{marker}"
        )
    never_behind = None if behind_default is None else not behind_default
    efficient = None
    if base and DEFAULT_STRATEGY in summary:
        ratio = summary[DEFAULT_STRATEGY]["mean"] / base["mean"]
        efficient = ratio <= 0.5
        print(
            f"target: default never behind random (1 SE): "
            f"{'met' if never_behind else 'MISSED'}; labels to target <= 0.50x random: "
            f"{'met' if efficient else 'MISSED'} ({ratio:.2f}x)"
        )
    return never_behind, efficient


def discovery_table(result: dict, args) -> None:
    rare = result["rare_classes"]
    names = result["dataset"]["class_names"]
    print(f"\nclass discovery: batches until {DISCOVERY_LABELS} labels of each rare class")
    print(f"{'strategy':<20} " + " ".join(f"{names[c]:>22}" for c in rare))
    for s in result["strategies"]:
        cells = []
        for c in rare:
            batches = []
            for run in _runs(result, s):
                reached = [
                    i for i, cc in enumerate(run["class_counts"]) if cc[c] >= DISCOVERY_LABELS
                ]
                batches.append(reached[0] if reached else None)
            found = [b for b in batches if b is not None]
            text = f"{np.mean(found):.1f}" if found else "-"
            cells.append(f"{text} ({len(found)}/{len(batches)} seeds)")
        print(f"{s:<20} " + " ".join(f"{c:>22}" for c in cells))
    if DEFAULT_STRATEGY not in result["strategies"]:
        return
    run = _runs(result, DEFAULT_STRATEGY)[0]
    first_seed = result["config"]["seeds"][0]
    k = len(names)
    print(
        f"\n{DEFAULT_STRATEGY}, seed {first_seed}, per batch: classes with a label, "
        "rare-class share of the picks, mix"
    )
    for i, picked in enumerate(run["picked_classes"]):
        found = sum(1 for c in run["class_counts"][i] if c > 0)
        share = sum(picked[c] for c in rare) / max(1, sum(picked))
        arms = ", ".join(f"{a} {n}" for a, n in sorted(run["arms"][i].items()))
        print(f"  batch {i + 1:>2}: {found}/{k} classes, rare {share:>4.0%} of picks; {arms}")
    if run["notes"] and run["notes"][-1]:
        print(f"  last batch's reason: {run['notes'][-1]}")


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value), NaNs left out."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0
    return float(v.mean()), float(se)


def behind_budgets(scores: np.ndarray, baseline: np.ndarray, labels: list[int]) -> list[int]:
    """Budgets where ``scores`` (seeds, budgets) is behind ``baseline`` on the same seeds by
    more than one standard error of the paired difference."""
    diff = np.asarray(scores, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    behind = []
    for j, n in enumerate(labels):
        mean, se = mean_se(diff[:, j])
        if mean < -se:
            behind.append(int(n))
    return behind


def faces_folder(args) -> Path:
    """The synthetic identities as an ImageFolder (written once under ``--cache``)."""
    from ml.synthetic_faces import make_faces_imagefolder

    root = args.cache / (
        f"faces-{args.identities}x{args.images_per_identity}-{args.image_size}"
        f"-{args.lookalike_fraction:g}"
    )
    if not (root / "done").exists():
        make_faces_imagefolder(
            root,
            identities=args.identities,
            images_per_identity=args.images_per_identity,
            image_size=args.image_size,
            lookalike_fraction=args.lookalike_fraction,
            seed=0,
        )
        (root / "done").write_text("")
    return root


def pair_holdouts(root: Path, args, seeds: list[int]) -> list[dict]:
    """Per seed, the holdout the simulator sets aside (the same split and pairs it draws)."""
    from ml.data import ImageFolderDataset
    from ml.simulation.pairs import _balanced_pairs, _split_identities

    y = ImageFolderDataset(root, image_size=args.image_size).targets
    rows = []
    for seed in seeds:
        _, held = _split_identities(y, args.holdout_identities, seed)
        test = _balanced_pairs(y, held, args.holdout_pairs, seed)
        same = int((y[test[:, 0]] == y[test[:, 1]]).sum())
        rows.append(
            {
                "identities": len(np.unique(y[held])),
                "images": len(held),
                "pairs": len(test),
                "same": same,
            }
        )
    return rows


def run_pairs(args) -> dict:
    """One simulator call per seed (each seed's split, start and arms depend on it alone),
    so that the tables have every seed's curve, not only the mean."""
    from ml.simulation.pairs import simulate_pairs

    root = faces_folder(args)
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    per_seed = []
    for seed in seeds:
        per_seed.append(
            simulate_pairs(
                root,
                strategy=args.pair_strategy,
                seeds=[seed],
                rounds=args.rounds,
                batch=args.batch,
                initial=args.initial,
                image_size=args.image_size,
                holdout_identities=args.holdout_identities,
                holdout_pairs=args.holdout_pairs,
                full_data_pairs=args.full_data_pairs,
                min_steps=args.min_steps,
                full_data_steps=args.full_data_steps,
                target_fraction=args.target,
                progress=not args.quiet,
            )
        )
    return {
        "root": str(root),
        "seconds": time.perf_counter() - started,
        "holdouts": pair_holdouts(root, args, seeds),
        "per_seed": per_seed,
    }


def pair_tables(result: dict, args) -> tuple[bool, bool]:
    """Prints the pair tables; returns (default never behind random, default at most half
    random's pairs to target)."""
    runs = result["per_seed"]
    default, base = args.pair_strategy, "random"
    arms = [default, base]
    labels = runs[0]["curves"][default]["labels"]
    budget = args.initial + args.rounds * args.batch
    auc = {a: np.array([r["curves"][a]["roc_auc_mean"] for r in runs]) for a in arms}
    eer = {a: np.array([r["curves"][a]["eer_mean"] for r in runs]) for a in arms}
    same = {a: np.array([r["curves"][a]["same_fraction_mean"] for r in runs]) for a in arms}
    full_auc = np.array([r["full_data"]["roc_auc_mean"] for r in runs])
    full_eer = np.array([r["full_data"]["eer_mean"] for r in runs])
    full_pairs = [r["full_data"]["per_seed"][0]["n_pairs"] for r in runs]
    per_seed_target = 0.5 + args.target * (full_auc - 0.5)
    mean_target = 0.5 + args.target * (float(full_auc.mean()) - 0.5)
    cfg = runs[0]["config"]
    hold = result["holdouts"]

    def spread(key: str) -> str:
        values = sorted({h[key] for h in hold})
        return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"

    def cell(values) -> str:
        m, se = mean_se(values)
        return f"{m:.3f}±{se:.3f}"

    print(
        f"\n== pair verification: synthetic faces, {cfg['n_identities']} identities x "
        f"{args.images_per_identity} images ({cfg['n_images']} images, {args.image_size} px, "
        f"{args.lookalike_fraction:.0%} look-alikes); holdout per seed {spread('identities')} "
        f"identities ({spread('images')} images), never in the pool, {spread('pairs')} pairs "
        f"({spread('same')} same, the rest different); initial {args.initial} random pairs, "
        f"{args.rounds} batches of {args.batch}, {len(runs)} seeds, {result['seconds']:.0f} s"
    )
    n_full = f"{min(full_pairs)}-{max(full_pairs)}" if min(full_pairs) < max(full_pairs) else ""
    print(
        f"full-data ROC AUC {cell(full_auc)} (trained on {n_full or full_pairs[0]} "
        f"pool pairs and the pairs they imply, {args.full_data_steps} steps), EER "
        f"{cell(full_eer)}; target 0.5 + {args.target:g} x (full - 0.5) = "
        f"{cell(per_seed_target)}, each seed against its own"
    )
    col = max(13, len(default) + 1)
    print(f"\nROC AUC on the holdout pairs (mean ± standard error), {len(runs)} seeds")
    print(f"{'pairs':>7} " + " ".join(f"{a:>{col}}" for a in arms))
    for j, n in enumerate(labels):
        print(f"{n:>7} " + " ".join(f"{cell(auc[a][:, j]):>{col}}" for a in arms))

    reached = {a: [r["labels_to_target_per_seed"][a][0] for r in runs] for a in arms}
    summary = {a: censored_summary(reached[a], budget) for a in arms}
    on_mean = {a: labels_to_target(labels, auc[a].mean(axis=0).tolist(), mean_target) for a in arms}
    last = labels[-1]
    print(
        f"\n{'strategy':<18} {'pairs to target':>16} {'missed':>7} {'vs random':>10} "
        f"{'AUC':>13} {'behind random at':>17} {'EER at ' + str(last):>14} "
        f"{'same share':>11} {'mean curve':>11}"
    )
    behind_default: list[int] = []
    for a in arms:
        t = summary[a]
        ratio = t["mean"] / summary[base]["mean"]
        area = np.nanmean(auc[a], axis=1)
        behind = behind_budgets(auc[a], auc[base], labels) if a != base else []
        if a == default:
            behind_default = behind
        role = "default" if a == DEFAULT_PAIR_STRATEGY else "tested"
        name = f"{a} ({role})" if a == default else a
        text = ",".join(map(str, behind)) or "-"
        mean_curve = "missed" if on_mean[a] is None else str(on_mean[a])
        print(
            f"{name:<18} {t['mean']:>7.0f} ± {t['std']:<6.0f} {t['missed']:>3}/{t['seeds']:<3} "
            f"{ratio:>9.2f}x {cell(area):>13} {text if a != base else '':>17} "
            f"{cell(eer[a][:, -1]):>14} {cell(same[a][:, -1]):>11} {mean_curve:>11}"
        )
    print(
        f"pairs to target: per seed, against that seed's full-data AUC (mean ± standard "
        f"deviation over seeds); a seed that never reaches it counts as the whole budget "
        f"({budget} pairs), so the mean is then a lower bound.\n'mean curve': where the mean "
        f"curve over seeds reaches the target of the mean full-data AUC ({mean_target:.3f}); "
        f"the exit status reads the per-seed figure, not this one.\nAUC: mean ROC AUC over "
        f"the budgets. EER: equal error rate on the holdout pairs. same share: 'same' among "
        f"the labeled pairs at {last}."
    )
    mixed = runs[0]["curves"][default].get("arms_per_seed")
    if mixed:
        print(f"\n{default}, seed 0, per batch: pairs per arm")
        for number, split in enumerate(mixed[0], start=1):
            text = ", ".join(f"{arm} {n}" for arm, n in sorted(split.items()))
            print(f"  batch {number:>2}: {text}")
        print(f"  last batch's reason: {runs[0]['curves'][default]['notes_per_seed'][0][-1]}")
    ratio = summary[default]["mean"] / summary[base]["mean"]
    never_behind, efficient = not behind_default, ratio <= 0.5
    print(
        f"target: default never behind random (1 SE): {'met' if never_behind else 'MISSED'}; "
        f"pairs to target <= 0.50x random: {'met' if efficient else 'MISSED'} ({ratio:.2f}x)"
    )
    return never_behind, efficient


def run_detection(args) -> dict:
    """Synthetic score pages (written once under ``--cache``) replayed by
    :func:`ml.simulation.detection.simulate_detection`, or a saved results.json."""
    if args.results:
        return json.loads(Path(args.results).read_text())
    from ml.simulation.detection import simulate_detection
    from ml.synthetic_scores import make_score_pages

    root = args.cache / f"score-pages-{args.pages}-{args.page_width}x{args.page_height}"
    if not (root / "annotations.json").exists():
        make_score_pages(root, pages=args.pages, width=args.page_width, height=args.page_height)
    started = time.perf_counter()
    result = simulate_detection(
        root,
        strategies=[s for s in args.detection_strategies.split(",") if s],
        seeds=args.seeds,
        initial=args.initial,
        batch=args.batch,
        rounds=args.rounds,
        holdout_fraction=args.holdout,
        target_fraction=args.target,
        control_fraction=args.control_fraction,
        steps=args.detection_steps,
        progress=not args.quiet,
    )
    result["seconds"] = time.perf_counter() - started
    return result


def detection_tables(result: dict, args) -> tuple[bool, bool]:
    """mAP@0.5 per page budget (mean ± SE), pages to target, budgets behind random."""
    cfg, arms = result["config"], result["strategies"]
    default, base = result["default_strategy"], result["baseline"]
    labels = result["curves"][arms[0]]["labels"]
    m50 = {a: np.array([c["map50"] for c in result["curves"][a]["per_seed"]]) for a in arms}
    full = result["full_data"]
    data = result["dataset"]
    print(
        f"\n== object detection: {data['n_items']} synthetic score pages ({data['n_boxes']} "
        f"boxes, {len(data['class_names'])} classes), holdout {cfg['holdout_fraction']:.0%} "
        f"of pages per seed; initial {cfg['initial']} random pages, {cfg['rounds']} batches "
        f"of {cfg['batch']}, {cfg['steps']} training steps per fit, {len(cfg['seeds'])} seeds"
        + (f", {result['seconds']:.0f} s" if "seconds" in result else "")
    )
    full_m = [f["map50"] for f in full["per_seed"]]
    m, se = mean_se(full_m)
    print(
        f"full-data mAP@0.5 {m:.3f}±{se:.3f} (mAP {full['map_mean']:.3f}, AP small "
        f"{full['ap_small_mean']:.3f}); target {cfg['target_fraction']:.0%} of it per seed"
    )
    col = max(13, *(len(a) + 1 for a in arms))
    print(f"\nmAP@0.5 on the holdout pages (mean ± standard error), {len(full_m)} seeds")
    print(f"{'pages':>7} " + " ".join(f"{a:>{col}}" for a in arms))
    for j, n in enumerate(labels):
        cells = [mean_se(m50[a][:, j]) for a in arms]
        print(f"{n:>7} " + " ".join(f"{f'{v:.3f}±{e:.3f}':>{col}}" for v, e in cells))
    print(
        f"\n{'strategy':<20} {'pages to target':>16} {'missed':>7} {'vs random':>10} "
        f"{'AUC':>13} {'behind random at':>17} {'mAP at end':>11} {'boxes/page':>11}"
    )
    summary = result["labels_to_target_summary"]
    behind_default: list[int] = []
    for a in arms:
        t = summary[a]
        ratio = t["mean"] / summary[base]["mean"] if base in summary else float("nan")
        area_m, area_se = mean_se(np.nanmean(m50[a], axis=1))
        behind = behind_budgets(m50[a], m50[base], labels) if a != base else []
        if a == default:
            behind_default = behind
        curve = result["curves"][a]
        per_page = curve["boxes_mean"][-1] / max(1, curve["labels"][-1])
        name = f"{a} (default)" if a == default else a
        text = ",".join(map(str, behind)) or "-"
        print(
            f"{name:<20} {t['mean']:>7.0f} ± {t['std']:<6.0f} {t['missed']:>3}/{t['seeds']:<3} "
            f"{ratio:>9.2f}x {area_m:>6.3f}±{area_se:.3f} {text if a != base else '':>17} "
            f"{curve['map_mean'][-1]:>11.3f} {per_page:>11.1f}"
        )
    print(
        "pages to target: per seed, against that seed's full-data mAP@0.5; a miss counts as "
        "the whole budget. AUC: mean mAP@0.5 over the budgets. boxes/page: boxes on the "
        "labeled pages at the last budget, per page."
    )
    ratio = summary[default]["mean"] / summary[base]["mean"]
    never_behind, efficient = not behind_default, ratio <= 0.5
    print(
        f"target: default never behind random (1 SE): {'met' if never_behind else 'MISSED'}; "
        f"pages to target <= 0.50x random: {'met' if efficient else 'MISSED'} ({ratio:.2f}x)"
    )
    return never_behind, efficient


def dataset_tables(name: str, result: dict, args) -> list[bool | None]:
    """Print one dataset's tables (settings read from the result); the targets' verdicts."""
    cfg = result["config"]
    counts = np.array(result["dataset"]["class_counts"])
    full = result["full_data"]
    classes = dict(zip(result["dataset"]["class_names"], counts.tolist(), strict=True))
    print(
        f"\n== {name}: {counts.sum()} items, classes {classes}, "
        f"holdout {cfg['holdout_fraction']:.0%}, initial {cfg['initial']}, {cfg['rounds']} "
        f"batches of {cfg['batch']} ({cfg['control_fraction']:.0%} random control), "
        f"{len(cfg['seeds'])} seeds ({', '.join(str(s) for s in cfg['seeds'])}), "
        f"{result['seconds']:.0f} s"
    )
    if cfg.get("warm_start_steps"):
        every = cfg.get("full_retrain_every")
        print(
            f"each round's model fine-tunes the previous one for {cfg['warm_start_steps']} "
            f"steps; {f'one round in {every}' if every else 'only the first'} trains from "
            "scratch (a project's default)"
        )
    else:
        print("every round's model trains from scratch")
    print(
        f"full-data balanced accuracy {full['balanced_accuracy_mean']:.3f} ± "
        f"{full['balanced_accuracy_std']:.3f} over seeds; target {cfg['target_fraction']:.0%} "
        "of it per seed"
    )
    reference_table(result)
    if not result["strategies"]:
        return []
    curves = curve_tables(name, result, args)
    verdicts = list(summary_table(result, curves, args))
    discovery_table(result, args)
    return verdicts


def reference_table(result: dict) -> None:
    """Per seed: the full-data reference, the trainings it averages and the target."""
    fraction = result["config"]["target_fraction"]
    full = result["full_data"]
    print(f"{'seed':>4} {'full data':>10} {'trainings':>9} {'their range':>13} {'target':>7}")
    for seed, entry, n, (low, high) in zip(
        result["config"]["seeds"],
        full["per_seed"],
        full["fits_per_seed"],
        full["fit_range_per_seed"],
        strict=True,
    ):
        print(
            f"{seed:>4} {entry['balanced_accuracy']:>10.3f} {n:>9} "
            f"{low:>6.3f}-{high:.3f} {fraction * entry['balanced_accuracy']:>7.3f}"
        )


def merged_results(paths: list[str]) -> dict:
    """The datasets of several ``--json`` files of classification runs, merged by seed and
    strategy (:func:`ml.simulation.report.merge_results`)."""
    from ml.simulation.report import merge_results

    parts = [json.loads(Path(p).read_text()) for p in paths]
    names = list(dict.fromkeys(n for part in parts for n in part))
    results = {}
    for name in names:
        having = [part[name] for part in parts if name in part]
        merged = merge_results(having)
        merged["seconds"] = sum(r.get("seconds", 0.0) for r in having)
        merged["rare_classes"] = having[0]["rare_classes"]
        results[name] = merged
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Learning curves of strategies beside random.")
    parser.add_argument("--task", choices=TASKS, default="classification")
    parser.add_argument("--strategies", default=f"random,{DEFAULT_STRATEGY}")
    parser.add_argument("--datasets", default="digits,inspection")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run are first-seed .. first-seed + seeds - 1 (split a slow run over "
        "processes, then --merge their --json files)",
    )
    parser.add_argument("--initial", type=int, help="classification 20, pairs 20")
    parser.add_argument("--batch", type=int, help="classification 20, pairs 40")
    parser.add_argument("--rounds", type=int, help="classification 15, pairs 12")
    parser.add_argument("--holdout", type=float, default=0.25)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--control-fraction", type=float, default=0.1)
    parser.add_argument("--rare-fraction", type=float, default=0.05)
    parser.add_argument("--items", type=int, default=2300, help="inspection tiles")
    parser.add_argument("--image-size", type=int, help="inspection 64, faces 32")
    parser.add_argument(
        "--augment",
        default="none",
        help="inspection: the CNN's training augmentations, a policy of ml.augment.POLICIES "
        "(none, as a project's default; light, standard, dihedral)",
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="inspection: train every round's CNN from scratch, instead of the platform's "
        "default (fine-tune the previous round's model for 100 steps, from scratch one "
        "round in 5)",
    )
    parser.add_argument(
        "--full-retrain-every",
        type=int,
        default=PLATFORM_FULL_RETRAIN_EVERY,
        help="inspection: one round in this many trains from scratch (0: only the first; "
        "default %(default)s, as LOUPE_FULL_RETRAIN_EVERY)",
    )
    pairs = parser.add_argument_group("pair_verification")
    pairs.add_argument("--pair-strategy", default=DEFAULT_PAIR_STRATEGY)
    pairs.add_argument("--identities", type=int, default=40)
    pairs.add_argument("--images-per-identity", type=int, default=8)
    pairs.add_argument("--lookalike-fraction", type=float, default=0.4)
    pairs.add_argument("--holdout-identities", type=float, default=0.3)
    pairs.add_argument("--holdout-pairs", type=int, default=400)
    pairs.add_argument("--full-data-pairs", type=int, default=800)
    pairs.add_argument("--min-steps", type=int, default=200)
    pairs.add_argument("--full-data-steps", type=int, default=300)
    detection = parser.add_argument_group("object_detection")
    detection.add_argument("--pages", type=int, default=40)
    detection.add_argument("--page-width", type=int, default=512)
    detection.add_argument("--page-height", type=int, default=384)
    detection.add_argument("--detection-steps", type=int, default=100)
    detection.add_argument("--detection-strategies", default="random,box_mean,box_sum")
    detection.add_argument("--results", help="print the tables of a saved results.json")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "benchmarks")
    parser.add_argument(
        "--temperature-scaling",
        default="",
        help="strategies also run with probabilities calibrated on the holdout each round, "
        "as '<name>+temperature' (comma-separated; default none)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="print the tables of classification runs saved with --json, merged by seed "
        "and strategy (same data and settings), instead of running",
    )
    parser.add_argument(
        "--full-data-fits",
        type=int,
        default=SimulationConfig.full_data_fits,
        help="trainings on the whole pool per seed; the target is 90%% of their mean "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--reference-only",
        action="store_true",
        help="run only the full-data trainings (no strategy); --merge adds them to the "
        "reference of runs of the same seeds",
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    for key, value in TASK_DEFAULTS[args.task].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.task == "object_detection":
        result = run_detection(args)
        verdicts = detection_tables(result, args)
        if args.json:
            Path(args.json).write_text(json.dumps(result, default=float))
        return 0 if all(verdicts) else 1
    if args.task == "pair_verification":
        from ml.simulation.pairs import ADAPTIVE
        from ml.strategies.pairs import PAIR_STRATEGIES

        known = (*PAIR_STRATEGIES, ADAPTIVE)
        if args.pair_strategy not in known or args.pair_strategy == "random":
            print(f"unknown pair strategy: {args.pair_strategy}", file=sys.stderr)
            return 2
        result = run_pairs(args)
        verdicts = pair_tables(result, args)
        if args.json:
            Path(args.json).write_text(json.dumps(result, default=float))
        return 0 if all(verdicts) else 1
    if args.merge:
        try:
            results = merged_results(args.merge)
        except (OSError, ValueError, KeyError) as exc:
            print(f"cannot merge: {exc}", file=sys.stderr)
            return 2
        verdicts = [v for name, r in results.items() for v in dataset_tables(name, r, args)]
        if args.json:
            Path(args.json).write_text(json.dumps(results, default=float))
        return 0 if all(v is not False for v in verdicts) else 1
    args.strategies = [] if args.reference_only else [s for s in args.strategies.split(",") if s]
    if args.full_data_fits < 1:
        print("--full-data-fits must be at least 1", file=sys.stderr)
        return 2
    args.temperature_scaling = [s for s in args.temperature_scaling.split(",") if s]
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = [s for s in args.strategies if s not in available()]
    unknown += [d for d in datasets if d not in DATASETS]
    unknown += [s for s in args.temperature_scaling if s not in args.strategies]
    unknown += [args.augment] if args.augment not in POLICIES else []
    if unknown:
        print(f"unknown: {', '.join(unknown)}", file=sys.stderr)
        return 2
    results, verdicts = {}, []
    for name in datasets:
        result = run_dataset(name, args)
        results[name] = result
        verdicts += dataset_tables(name, result, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, default=float))
    return 0 if all(v is not False for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())

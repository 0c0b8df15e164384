"""Replay page labeling for object detection: how many labeled pages until the detector is
nearly as good as with all of them?

::

    python -m ml.simulate --task object_detection --data DIR --seeds 2 --rounds 5 --batch 2

``DIR`` holds ``annotations.json`` (COCO instances, every page boxed) and the images it
names (``file_name`` relative to ``DIR``). Every seed sets aside its own holdout pages; the
rest is the pool, whose boxes are revealed only when a strategy asks for a page. All arms of
a seed start from the same random pages and share the round-0 model (same pages, same
training seed); each round retrains :class:`ml.tasks.object_detection.ObjectDetectionSpec`
from scratch, scores the unlabeled pages and asks for ``batch`` more (with the random
control slice of ``control_fraction``, as a project has). The detection arms reduce the
per-box uncertainty (1 − max class probability, ``item_scores`` of the spec) per page with
:func:`ml.strategies.reduce` (:mod:`ml.strategies.detection`): ``box_sum`` (favours crowded
pages), ``box_mean`` and ``box_max``, and ``box_mean_diverse`` when asked for (a ``box_mean``
shortlist spread over the page embeddings); ``random`` is the baseline. ``box_adaptive``
splits each batch between those arms and re-weights them by what their earlier pages taught
(:mod:`ml.strategies.adaptive`): each round it is given the labeled picks so far, each
valued as a project values it, 1 − F1 of the boxes the model predicted when it picked the
page against the page's revealed boxes (:func:`ml.detection_metrics.page_value`, at the
box score that gave that model the best F1 on the holdout).
``labels_to_target`` counts labeled pages to ``target_fraction`` of the full-data mAP@0.5.

``results.json`` holds the keys of the classification simulator (:mod:`ml.simulate`) in
detection's figures: ``full_data`` (``map50_mean`` / ``_std``, ``map_mean``,
``ap_small_mean``, ``target_map50``, per seed), ``curves.<arm>`` (``labels`` in pages,
``map50_mean`` / ``_std``, ``map_mean`` / ``_std``, ``ap_small_mean`` / ``_std``,
``boxes_mean``: labeled boxes, ``per_seed``), ``labels_to_target``,
``labels_to_target_per_seed``, ``labels_to_target_summary``, ``default_strategy``, and
``stop_signal_at`` (null per seed: :mod:`ml.stopping` reads class predictions, which a
detector does not give one per page).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.artifacts import ItemArrays
from ml.detection_metrics import best_score_threshold, page_value
from ml.simulation.engine import torch_threads
from ml.simulation.report import censored_summary, labels_to_target
from ml.strategies import (
    AcquisitionInputs,
    PickHistory,
    Strategy,
    available,
    default_strategy,
    get_strategy,
    select_batch,
)
from ml.strategies.adaptive import AdaptiveStrategy
from ml.tasks.object_detection import OBJECT_DETECTION, ObjectDetectionSpec, page_boxes

BASELINE = "random"
# The registry's default for object detection ("box_mean"), chosen before measuring, by the
# issue's argument: a sum favours crowded pages, the mean is the sum normalised per box.
# benchmarks/label_efficiency.py --task object_detection measures the reductions beside random.
DEFAULT_DETECTION_STRATEGY = default_strategy(OBJECT_DETECTION)
# Every strategy of ml.strategies that reads pages of boxes (random among them).
DETECTION_STRATEGIES = tuple(available(OBJECT_DETECTION))
FULL_DATA_SEED = 999_983
# The box score from which a model's boxes count when its holdout has no true box to choose
# one on (the platform's default, `loupe.tasktypes.object_detection.DEFAULT_BOX_THRESHOLD`).
DEFAULT_SCORE_THRESHOLD = 0.3


def detection_strategy(name: str) -> Strategy:
    """An arm by name: a strategy of the registry serving object detection (``box_sum``,
    ``box_mean``, ``box_max``, ``box_mean_diverse``, ``box_adaptive``) or ``random``."""
    if name not in DETECTION_STRATEGIES:
        raise ValueError(f"unknown detection strategy {name!r}; choose from {DETECTION_STRATEGIES}")
    return get_strategy(name)


def load_pages(root: str | Path) -> tuple[list[np.ndarray], list[dict], list[str], list[str]]:
    """``(pages, targets, classes, file_names)`` of ``root/annotations.json``: grey pages
    ``(H, W)`` in [0, 1] and per page ``{"boxes": (m, 4) x1y1x2y2, "labels": (m,)}``.
    Raises ValueError when a page has no boxes listed (a replay needs every answer)."""
    from PIL import Image

    from ml.detection_io import load_coco

    root = Path(root)
    parsed = load_coco(root / "annotations.json", images_without_boxes="empty")
    classes = list(parsed.classes)
    pages, targets, names = [], [], []
    for image in parsed.images:
        if image.boxes is None:
            raise ValueError(f"{image.file_name} has no usable boxes; a replay needs every page")
        with Image.open(root / image.file_name) as img:
            pages.append(np.asarray(img.convert("L"), dtype=np.float32) / 255.0)
        boxes = np.array([b.xyxy() for b in image.boxes], dtype=np.float32).reshape(-1, 4)
        labels = np.array([classes.index(b.label) for b in image.boxes], dtype=np.int64)
        targets.append({"boxes": boxes, "labels": labels})
        names.append(image.file_name)
    if len(pages) < 3:
        raise ValueError("need at least 3 pages (a holdout and a pool)")
    return pages, targets, classes, names


def split_pages(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(pool, holdout)`` page positions, sorted; each side gets at least one page."""
    order = np.random.default_rng([seed, 53]).permutation(n)
    n_hold = min(max(1, int(round(fraction * n))), n - 1)
    return np.sort(order[n_hold:]), np.sort(order[:n_hold])


def _figure(details: dict, key: str) -> float:
    value = details.get(key)
    return float("nan") if value is None else float(value)


class _Replay:
    """Trains, evaluates and scores for one data set (the spec and its settings)."""

    def __init__(self, pages, targets, classes, *, steps, tile_size, options):
        from ml.detection_training import DetectionTrainConfig

        self.pages, self.targets, self.classes = pages, targets, classes
        self.spec = ObjectDetectionSpec()
        self.steps, self.options = steps, options
        self.config = lambda seed, steps: DetectionTrainConfig(
            steps=steps, tile_size=tile_size, seed=seed
        )

    def fit(self, positions, *, seed: int, steps: int | None = None):
        model = self.spec.build_model(num_classes=len(self.classes), seed=seed, **self.options)
        config = self.config(seed, steps or self.steps)
        x = [self.pages[i] for i in positions]
        y = [self.targets[i] for i in positions]
        return self.spec.train(model, x, y, config=config).model

    def evaluate(self, model, positions, *, with_threshold: bool = False) -> dict:
        """mAP@0.5, mAP and AP small on the pages at ``positions``; with ``with_threshold``
        also ``score_threshold``, the box score of the best F1 of boxes on them (as a
        version's ``box_threshold`` is chosen on its holdout)."""
        predictions = self.spec.predict(model, [self.pages[i] for i in positions])
        truth = [self.targets[i] for i in positions]
        details = self.spec.evaluate(truth, predictions, class_names=self.classes).details
        figures = {k: _figure(details, k) for k in ("map50", "map", "ap_small")}
        if with_threshold:
            best = best_score_threshold(
                truth, page_boxes(predictions), num_classes=len(self.classes)
            )["threshold"]
            figures["score_threshold"] = DEFAULT_SCORE_THRESHOLD if best is None else best
        return figures

    def inputs(self, model, positions) -> tuple[AcquisitionInputs, list[dict]]:
        """The strategies' inputs for the pages at ``positions``, and each page's predicted
        boxes."""
        predictions = self.spec.predict(model, [self.pages[i] for i in positions])
        scored = ItemArrays(
            item_ids=np.asarray(positions, dtype=np.int64),
            scores=predictions.scores,
            embeddings=predictions.embeddings,
            extras=predictions.extras,
        )
        return self.spec.to_acquisition_inputs(scored), page_boxes(predictions)


def simulate_detection(
    root: str | Path,
    *,
    strategies: Sequence[str] | None = None,
    seeds: int | Sequence[int] = 2,
    initial: int = 2,
    batch: int = 2,
    rounds: int = 5,
    holdout_fraction: float = 0.25,
    target_fraction: float = 0.9,
    control_fraction: float = 0.1,
    steps: int = 200,
    full_data_steps: int | None = None,
    tile_size: int = 128,
    threads: int | None = 1,
    model_options: dict | None = None,
    progress: bool = False,
) -> dict:
    """Page acquisition by each of ``strategies`` (default: random and every box reduction)
    for each of ``seeds``: ``rounds`` batches of ``batch`` pages after ``initial`` random
    ones, the detector retrained from scratch for ``steps`` steps of ``tile_size`` crops
    each round (``full_data_steps``, default ``steps``, for the whole pool). Deterministic
    by seed on a given device. Returns the ``results.json`` document of the module's note."""
    pages, targets, classes, names = load_pages(root)
    arms = list(strategies or [BASELINE, "box_sum", DEFAULT_DETECTION_STRATEGY, "box_max"])
    resolved = {arm: detection_strategy(arm) for arm in arms}
    reads_history = any(isinstance(s, AdaptiveStrategy) for s in resolved.values())
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    replay = _Replay(
        pages, targets, classes, steps=steps, tile_size=tile_size, options=model_options or {}
    )
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    full: list[dict] = []

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    with torch_threads(threads):
        for seed in seeds:
            pool, held = split_pages(len(pages), holdout_fraction, seed)
            model = replay.fit(pool, seed=seed * 1009 + FULL_DATA_SEED, steps=full_data_steps)
            full.append({"seed": seed, "pages": len(pool), **replay.evaluate(model, held)})
            say(f"seed {seed} full data: {len(pool)} pages, mAP@0.5 {full[-1]['map50']:.3f}")
            rng = np.random.default_rng([seed, 59])
            start = np.sort(rng.choice(len(pool), size=min(initial, len(pool)), replace=False))
            first_model = replay.fit(pool[start], seed=seed * 1009)
            first = replay.evaluate(first_model, held, with_threshold=reads_history)
            for arm in arms:
                runs[arm].append(
                    _run_arm(replay, resolved[arm], arm, pool, held, start, first_model, first,
                             seed=seed, batch=batch, rounds=rounds,
                             control_fraction=control_fraction, names=names, say=say)
                )  # fmt: skip
    config = {
        "strategies": arms, "seeds": seeds, "initial": initial, "batch": batch,
        "rounds": rounds, "holdout_fraction": holdout_fraction,
        "target_fraction": target_fraction, "control_fraction": control_fraction,
        "steps": steps, "full_data_steps": full_data_steps or steps, "tile_size": tile_size,
        "root": str(root),
    }  # fmt: skip
    return _summary(runs, full, arms, targets, classes, config)


def _run_arm(
    replay, strategy, arm, pool, held, start, first_model, first, *,
    seed, batch, rounds, control_fraction, names, say,
) -> dict:  # fmt: skip
    labeled = np.zeros(len(pool), dtype=bool)
    labeled[start] = True
    keys = ("labels", "boxes", "map50", "map", "ap_small", "arms", "picked", "notes")
    curve = {k: [] for k in keys}
    model, metrics = first_model, first
    # A mix learns from its labeled picks: (arm, round picked, value) of each.
    adaptive = isinstance(strategy, AdaptiveStrategy)
    picks: list[tuple[str, int, float]] = []
    for round_no in range(rounds + 1):
        if round_no:
            model = replay.fit(pool[labeled], seed=seed * 1009 + round_no)
            metrics = replay.evaluate(model, held, with_threshold=adaptive)
        chosen_pages = pool[labeled]
        curve["labels"].append(int(labeled.sum()))
        curve["boxes"].append(int(sum(len(replay.targets[i]["labels"]) for i in chosen_pages)))
        for key in ("map50", "map", "ap_small"):
            curve[key].append(metrics[key])
        say(
            f"seed {seed} {arm:>9} round {round_no}: {curve['labels'][-1]} pages "
            f"({curve['boxes'][-1]} boxes), mAP@0.5 {metrics['map50']:.3f}, "
            f"mAP {metrics['map']:.3f}"
        )
        unlabeled = np.flatnonzero(~labeled)
        if round_no == rounds or unlabeled.size == 0:
            break
        if arm == BASELINE:
            inputs, predicted = AcquisitionInputs(item_scores=np.zeros(unlabeled.size)), None
        else:
            inputs, predicted = replay.inputs(model, pool[unlabeled])
        if adaptive:
            inputs.history = _pick_history(picks, round_no)
        chosen = select_batch(
            strategy, inputs, batch, control_fraction=control_fraction, seed=seed * 7919 + round_no
        )
        positions = unlabeled[chosen.indices]
        kinds, counts = np.unique(chosen.arms.astype(str), return_counts=True)
        curve["arms"].append(dict(zip(kinds.tolist(), counts.tolist(), strict=True)))
        curve["picked"].append([names[i] for i in pool[positions]])
        curve["notes"].append(chosen.note)
        if adaptive and predicted is not None:
            # The boxes are revealed as soon as a page is asked for.
            for index, picked_by in zip(chosen.indices, chosen.arms, strict=True):
                value = page_value(
                    predicted[index],
                    replay.targets[pool[unlabeled[index]]],
                    score_threshold=metrics["score_threshold"],
                )
                picks.append((str(picked_by), round_no, value))
        labeled[positions] = True
    return curve


def _pick_history(picks: list[tuple[str, int, float]], round_no: int) -> PickHistory:
    """The labeled picks before round ``round_no`` as a mix reads them: arm, age in rounds
    (0: the round before) and value; a page has no single class, so the class fields are
    placeholders."""
    return PickHistory.from_rows(
        (arm, 0, 0, 0.0, 0, round_no - 1 - picked, value) for arm, picked, value in picks
    )


def _mean_std(rows: list[list[float]]) -> tuple[list[float], list[float]]:
    m = np.array(rows, dtype=np.float64)
    return np.nanmean(m, axis=0).tolist(), np.nanstd(m, axis=0).tolist()


def _summary(runs, full, arms, targets, classes, config) -> dict:
    fraction = config["target_fraction"]
    map50 = np.array([f["map50"] for f in full], dtype=np.float64)
    target = fraction * float(np.nanmean(map50))
    counts = np.bincount(
        np.concatenate([t["labels"] for t in targets]), minlength=len(classes)
    ).tolist()
    result = {
        "config": config,
        "dataset": {
            "n_items": len(targets),
            "n_boxes": int(sum(counts)),
            "class_counts": counts,
            "class_names": classes,
            "root": config["root"],
        },
        "default_strategy": DEFAULT_DETECTION_STRATEGY,
        "baseline": BASELINE,
        "strategies": arms,
        "full_data": {
            "map50_mean": float(np.nanmean(map50)),
            "map50_std": float(np.nanstd(map50)),
            "map_mean": float(np.nanmean([f["map"] for f in full])),
            "ap_small_mean": float(np.nanmean([f["ap_small"] for f in full])),
            "target_map50": target,
            "per_seed": full,
        },
        "curves": {},
        "labels_to_target": {},
        "labels_to_target_per_seed": {},
        "labels_to_target_summary": {},
        "stop_signal_at": {},
    }
    for arm in arms:
        curves = runs[arm]
        labels = curves[0]["labels"]
        curve = {"labels": labels, "per_seed": curves}
        for key in ("map50", "map", "ap_small", "boxes"):
            curve[f"{key}_mean"], curve[f"{key}_std"] = _mean_std([c[key] for c in curves])
        result["curves"][arm] = curve
        result["labels_to_target"][arm] = labels_to_target(labels, curve["map50_mean"], target)
        per_seed = [
            labels_to_target(c["labels"], c["map50"], fraction * f["map50"])
            for c, f in zip(curves, full, strict=True)
        ]
        result["labels_to_target_per_seed"][arm] = per_seed
        spent = max(c["labels"][-1] for c in curves)
        result["labels_to_target_summary"][arm] = censored_summary(per_seed, spent)
        result["stop_signal_at"][arm] = [None] * len(curves)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m ml.simulate --task object_detection`` (the classification options)."""
    parser = argparse.ArgumentParser(
        prog="python -m ml.simulate --task object_detection",
        description="Replay page labeling for object detection: box strategies beside random.",
    )
    parser.add_argument("--data", required=True, help="DIR with annotations.json (COCO)")
    parser.add_argument(
        "--strategies",
        default=f"{BASELINE},box_sum,{DEFAULT_DETECTION_STRATEGY},box_max",
        help=f"comma-separated, from: {', '.join(DETECTION_STRATEGIES)}",
    )
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--initial", type=int, default=2, help="initial random pages")
    parser.add_argument("--batch", type=int, default=2, help="pages per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--holdout", type=float, default=0.25, help="holdout fraction of pages")
    parser.add_argument("--target", type=float, default=0.9, help="fraction of full-data mAP@0.5")
    parser.add_argument("--control-fraction", type=float, default=0.1)
    parser.add_argument("--min-steps", type=int, default=200, help="training steps per fit")
    parser.add_argument("--tile-size", type=int, default=128, help="training crop size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's)")
    parser.add_argument("--out", default="results.json")
    parser.add_argument("--plot", help="also draw the mAP@0.5 curves to this PNG")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in DETECTION_STRATEGIES]
    if unknown:
        print(f"unknown strategies: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if not (Path(args.data) / "annotations.json").is_file():
        print(f"no annotations.json in {args.data}", file=sys.stderr)
        return 2
    results = simulate_detection(
        args.data,
        strategies=strategies,
        seeds=args.seeds,
        initial=args.initial,
        batch=args.batch,
        rounds=args.rounds,
        holdout_fraction=args.holdout,
        target_fraction=args.target,
        control_fraction=args.control_fraction,
        steps=args.min_steps,
        tile_size=args.tile_size,
        threads=args.threads or None,
        progress=not args.quiet,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    if args.plot:
        from ml.simulation.report import plot_curves

        plot_curves(results, args.plot, metric="map50")
    full = results["full_data"]
    print(
        f"full data: mAP@0.5 {full['map50_mean']:.3f} ± {full['map50_std']:.3f}; "
        f"target {full['target_map50']:.3f}"
    )
    for arm in strategies:
        reached = results["labels_to_target"][arm]
        curve = results["curves"][arm]["map50_mean"]
        print(
            f"{arm:>9}: pages to target (mean curve) {reached or 'not reached'}; per seed "
            f"{results['labels_to_target_per_seed'][arm]}; mAP@0.5 by round "
            + " ".join(f"{v:.3f}" for v in curve)
        )
    print(f"results written to {out}" + (f", curves to {args.plot}" if args.plot else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

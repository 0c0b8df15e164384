"""Replay pair labeling on an ImageFolder of identities: how many labeled pairs until the
verifier is nearly as good as with all of them?

::

    python -m ml.simulation.pairs --data DIR --seeds 2 --rounds 8 --batch 30

``DIR`` holds one folder per identity (``DIR/<identity>/<image>``). Every seed sets aside
its own holdout identities, whose pairs (half same, half different) measure ROC AUC and
calibrate ``p(same)``; the other identities' images are the pool, whose pair labels are
revealed only when asked for. Both arms start from the same random pairs; each round
retrains the siamese model from scratch, then the strategy (pairs mined from the model's
embedding, :func:`ml.strategies.pairs.select_pairs`, never a pair whose answer the labels
imply already) or the random-pairs baseline asks for ``batch`` more. ``labels_to_target``
counts the labeled pairs at which the ROC AUC reaches ``target_fraction`` of the full-data
AUC's distance above chance, ``0.5 + 0.9 * (auc_full - 0.5)``; ``full_data`` trains on
many pool pairs (every same pair and as many different ones, up to ``full_data_pairs``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.pair_labels import implied_pairs
from ml.simulation.engine import torch_threads
from ml.simulation.report import censored_summary, labels_to_target
from ml.strategies.pairs import (
    canonical,
    known_pairs,
    mine_candidate_pairs,
    p_same,
    random_pairs,
    select_pairs,
)
from ml.tasks.pair_verification import PairTrainConfig, PairVerificationSpec

BASELINE = "random"
DEFAULT_PAIR_STRATEGY = "mixed"
# The platform's adaptive mix over pairs (`pair_adaptive`): pair_mixed and random pairs
# among the mined candidates, re-weighted by what their labeled picks taught.
ADAPTIVE = "adaptive"


def _split_identities(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(pool_images, holdout_images)``: whole identities go to one side."""
    people = np.unique(y)
    rng = np.random.default_rng([seed, 41])
    n_hold = min(max(2, int(round(fraction * len(people)))), len(people) - 2)
    held = rng.choice(people, size=n_hold, replace=False)
    hold = np.isin(y, held)
    return np.flatnonzero(~hold), np.flatnonzero(hold)


def _balanced_pairs(y: np.ndarray, images: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Up to ``k`` distinct pairs of ``images``: half of them same-identity pairs (as many
    as exist), the rest different-identity pairs at random."""
    rng = np.random.default_rng([seed, 43])
    rows = []
    for c in np.unique(y[images]):
        members = images[y[images] == c]
        rows += [(a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
    same = np.array(rows, dtype=np.int64).reshape(-1, 2)
    same = same[rng.permutation(len(same))[: k // 2]]
    different = []
    seen: set[tuple[int, int]] = set()
    for _ in range(100 * k):  # bounded: a pool of one identity has no different pair
        if len(different) >= k - len(same):
            break
        a, b = rng.choice(images, 2, replace=False)
        key = (min(a, b), max(a, b))
        if y[a] != y[b] and key not in seen:
            seen.add(key)
            different.append(key)
    return np.concatenate([same, np.array(different, dtype=np.int64).reshape(-1, 2)])


def _fit_and_score(
    spec, x, y, train_pairs, holdout_pairs, holdout_y, *, seed, steps, options, closure
):
    model = spec.build_model(image_size=x.shape[-1], seed=seed, in_channels=x.shape[1], **options)
    labels = y[train_pairs[:, 0]] == y[train_pairs[:, 1]]
    if closure:
        train_pairs, labels = implied_pairs(train_pairs, labels, max_pairs=closure, seed=seed)
    labels = labels.astype(np.int64)
    config = PairTrainConfig(epochs=1, min_steps=steps, seed=seed)
    result = spec.train(
        model, x[train_pairs], labels, val_x=x[holdout_pairs], val_y=holdout_y, config=config
    )
    evaluation = spec.evaluate(holdout_y, spec.predict(result.model, x[holdout_pairs]))
    return result.model, evaluation.details


def adaptive_pairs(
    embeddings: np.ndarray,
    k: int,
    *,
    calibration: tuple[float, float],
    labeled: np.ndarray,
    same: np.ndarray,
    history: list[tuple],
    round_: int,
    seed: int,
):
    """``k`` pairs by the platform's ``pair_adaptive`` mix over the candidates mined from
    ``embeddings`` (none whose answer the ``labeled`` pairs and their answers ``same``
    imply), with ``history`` the earlier picks as ``(round, arm, same, p(same),
    labels of its answer before)``. Returns ``(pairs, arms, p(same), note)``."""
    from ml.strategies import AcquisitionInputs, PickHistory, get_strategy

    e = np.asarray(embeddings, dtype=np.float64)
    pairs, d, _ = mine_candidate_pairs(e, exclude=known_pairs(labeled, same), seed=seed)
    p = p_same(d, calibration)
    rows = [
        (arm, int(label), int(q >= 0.5), max(q, 1.0 - q), before, round_ - 1 - r)
        for r, arm, label, q, before in history
    ]
    inputs = AcquisitionInputs(
        probs=np.stack([1.0 - p, p], axis=1),
        embeddings=np.concatenate([e[pairs[:, 0]], e[pairs[:, 1]]], axis=1),
        labeled_class_counts=np.bincount(np.asarray(same, dtype=np.int64), minlength=2),
        history=PickHistory.from_rows(rows),
    )
    chosen = get_strategy("pair_adaptive").select(inputs, k, seed=seed)
    return pairs[chosen.indices], chosen.arms, p[chosen.indices], chosen.note


def simulate_pairs(
    root: str | Path,
    *,
    strategy: str = DEFAULT_PAIR_STRATEGY,
    seeds: int | Sequence[int] = 2,
    rounds: int = 8,
    batch: int = 30,
    initial: int = 20,
    image_size: int = 32,
    holdout_identities: float = 0.3,
    holdout_pairs: int = 400,
    full_data_pairs: int = 800,
    min_steps: int = 200,
    full_data_steps: int = 300,
    target_fraction: float = 0.9,
    max_per_image: int = 1,
    closure: int = 2000,
    threads: int | None = 1,
    model_options: dict | None = None,
    progress: bool = False,
) -> dict:
    """Pair acquisition by ``strategy`` against random pairs on the ImageFolder ``root``,
    for each of ``seeds``, ``rounds`` batches of ``batch`` pairs after ``initial`` random
    ones. Training sees the labeled pairs and the pairs their labels imply
    (:func:`ml.pair_labels.implied_pairs`, up to ``closure`` pairs; 0 for the labeled pairs
    alone), as the platform can; only labeled pairs are counted. Returns a JSON-ready
    document: ``curves.<arm>`` (``labels``, ``roc_auc_mean`` /
    ``_std``, ``eer_mean``, ``same_fraction_mean``: the share of "same" among the labeled
    pairs), ``full_data`` (``roc_auc_mean``, ``eer_mean``, ``target_roc_auc``, per seed),
    ``labels_to_target`` (mean curve) and ``labels_to_target_per_seed`` per arm."""
    from ml.data import ImageFolderDataset, load_tensors

    if strategy == BASELINE:
        raise ValueError("random pairs are the baseline already; choose another strategy")
    dataset = ImageFolderDataset(root, image_size=image_size)
    x, y = load_tensors(dataset)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    spec = PairVerificationSpec()
    options = dict(model_options or {})
    arms = [strategy, BASELINE]
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    full: list[dict] = []
    with torch_threads(threads):
        for seed in seeds:
            pool, held = _split_identities(y, holdout_identities, seed)
            test = _balanced_pairs(y, held, holdout_pairs, seed)
            test_y = (y[test[:, 0]] == y[test[:, 1]]).astype(np.int64)
            everything = pool[_balanced_pairs(y[pool], np.arange(len(pool)), full_data_pairs, seed)]
            _, details = _fit_and_score(
                spec,
                x,
                y,
                everything,
                test,
                test_y,
                seed=seed,
                steps=full_data_steps,
                options=options,
                closure=closure,
            )
            full.append(
                {
                    "seed": seed,
                    "roc_auc": details["roc_auc"],
                    "eer": details["eer"],
                    "n_pairs": len(everything),
                }
            )
            start = random_pairs(len(pool), initial, seed=seed)
            for arm in arms:
                labeled = start.copy()  # positions in ``pool``
                curve = {"labels": [], "roc_auc": [], "eer": [], "same_fraction": []}
                history: list[tuple] = []  # the adaptive mix's labeled picks
                if arm == ADAPTIVE:
                    curve["notes"], curve["arms"] = [], []
                for round_ in range(rounds + 1):
                    pairs = pool[labeled]
                    model, details = _fit_and_score(
                        spec,
                        x,
                        y,
                        pairs,
                        test,
                        test_y,
                        seed=seed,
                        steps=min_steps,
                        options=options,
                        closure=closure,
                    )
                    curve["labels"].append(len(labeled))
                    curve["roc_auc"].append(details["roc_auc"])
                    curve["eer"].append(details["eer"])
                    curve["same_fraction"].append(float((y[pairs[:, 0]] == y[pairs[:, 1]]).mean()))
                    if progress:
                        print(
                            f"seed {seed} {arm:>10} round {round_}: {len(labeled)} pairs, "
                            f"AUC {details['roc_auc']:.3f}, "
                            f"same {curve['same_fraction'][-1]:.0%}",
                            file=sys.stderr,
                            flush=True,
                        )
                    if round_ == rounds:
                        break
                    answers = y[pool[labeled[:, 0]]] == y[pool[labeled[:, 1]]]
                    if arm == BASELINE:
                        new = random_pairs(
                            len(pool), batch, seed=seed * 1000 + round_, exclude=labeled
                        )
                    elif arm == ADAPTIVE:
                        a, b = (float(v) for v in model.calibration)
                        new, picked_by, p, note = adaptive_pairs(
                            spec.embed_images(model, x[pool]),
                            batch,
                            calibration=(a, b),
                            labeled=labeled,
                            same=answers,
                            history=history,
                            round_=round_,
                            seed=seed * 1000 + round_,
                        )
                        counts = np.bincount(answers.astype(np.int64), minlength=2)
                        truth = y[pool[new[:, 0]]] == y[pool[new[:, 1]]]
                        history += [
                            (round_, str(by), int(t), float(q), int(counts[int(t)]))
                            for by, t, q in zip(picked_by, truth, p, strict=True)
                        ]
                        curve["notes"].append(note)
                        curve["arms"].append(
                            {str(k): int((picked_by == k).sum()) for k in np.unique(picked_by)}
                        )
                    else:
                        embeddings = spec.embed_images(model, x[pool])
                        a, b = (float(v) for v in model.calibration)
                        new = select_pairs(
                            embeddings,
                            batch,
                            calibration=(a, b),
                            strategy=arm,
                            exclude=labeled,
                            labels=answers,
                            max_per_image=max_per_image,
                            seed=seed * 1000 + round_,
                        ).pairs
                    labeled = np.concatenate([labeled, canonical(new)])
                runs[arm].append(curve)
    return _summary(runs, full, arms, target_fraction, config={
        "strategy": strategy, "seeds": seeds, "rounds": rounds, "batch": batch, "initial": initial,
        "image_size": image_size, "holdout_identities": holdout_identities,
        "holdout_pairs": holdout_pairs, "full_data_pairs": full_data_pairs, "min_steps": min_steps,
        "full_data_steps": full_data_steps, "target_fraction": target_fraction,
        "max_per_image": max_per_image, "closure": closure, "root": str(root),
        "n_images": int(len(y)), "n_identities": int(len(np.unique(y))),
    })  # fmt: skip


def _summary(runs: dict, full: list[dict], arms: list[str], fraction: float, *, config) -> dict:
    aucs = np.array([f["roc_auc"] for f in full], dtype=np.float64)
    target = 0.5 + fraction * (float(aucs.mean()) - 0.5)
    result = {
        "config": config,
        "default_strategy": arms[0],
        "baseline": BASELINE,
        "full_data": {
            "roc_auc_mean": float(aucs.mean()),
            "roc_auc_std": float(aucs.std()),
            "eer_mean": float(np.mean([f["eer"] for f in full])),
            "target_roc_auc": target,
            "per_seed": full,
        },
        "curves": {},
        "labels_to_target": {},
        "labels_to_target_per_seed": {},
        "labels_to_target_summary": {},
    }
    budget = config["initial"] + config["rounds"] * config["batch"]
    for arm in arms:
        curves = runs[arm]
        labels = curves[0]["labels"]
        auc = np.array([c["roc_auc"] for c in curves], dtype=np.float64)
        result["curves"][arm] = {
            "labels": labels,
            "roc_auc_mean": auc.mean(axis=0).tolist(),
            "roc_auc_std": auc.std(axis=0).tolist(),
            "eer_mean": np.mean([c["eer"] for c in curves], axis=0).tolist(),
            "same_fraction_mean": np.mean([c["same_fraction"] for c in curves], axis=0).tolist(),
        }
        if "notes" in curves[0]:  # the adaptive mix: its split and why, per seed and batch
            result["curves"][arm]["notes_per_seed"] = [c["notes"] for c in curves]
            result["curves"][arm]["arms_per_seed"] = [c["arms"] for c in curves]
        result["labels_to_target"][arm] = labels_to_target(
            labels, auc.mean(axis=0).tolist(), target
        )
        per_seed = [
            labels_to_target(c["labels"], c["roc_auc"], 0.5 + fraction * (f["roc_auc"] - 0.5))
            for c, f in zip(curves, full, strict=True)
        ]
        result["labels_to_target_per_seed"][arm] = per_seed
        result["labels_to_target_summary"][arm] = censored_summary(per_seed, budget)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m ml.simulation.pairs",
        description="Replay pair labeling: a pair strategy against random pairs.",
    )
    parser.add_argument("--data", required=True, help="ImageFolder: DIR/<identity>/<image>")
    parser.add_argument("--strategy", default=DEFAULT_PAIR_STRATEGY)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--min-steps", type=int, default=200)
    parser.add_argument("--out", default="pair_results.json")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"no such folder: {args.data}", file=sys.stderr)
        return 2
    results = simulate_pairs(
        args.data,
        strategy=args.strategy,
        seeds=args.seeds,
        rounds=args.rounds,
        batch=args.batch,
        initial=args.initial,
        image_size=args.image_size,
        min_steps=args.min_steps,
        progress=not args.quiet,
    )
    Path(args.out).write_text(json.dumps(results, indent=1))
    full = results["full_data"]
    print(
        f"full data: ROC AUC {full['roc_auc_mean']:.3f} ± {full['roc_auc_std']:.3f}, "
        f"EER {full['eer_mean']:.3f}; target AUC {full['target_roc_auc']:.3f}"
    )
    for arm, curve in results["curves"].items():
        print(
            f"{arm:>10}: pairs to target (mean curve) {results['labels_to_target'][arm]}; "
            f"per seed {results['labels_to_target_per_seed'][arm]}; "
            f"AUC by round {' '.join(f'{v:.3f}' for v in curve['roc_auc_mean'])}; "
            f"share of same pairs {curve['same_fraction_mean'][-1]:.2f}"
        )
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Turn raw simulation curves into the numbers people compare, and draw them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def full_data_seed(seed: int, fit: int) -> int:
    """The training seed of a seed's ``fit``-th full-data training (fit 0 is the one every
    earlier result used)."""
    return seed * 1009 + 999_983 + 7_919 * fit


def mean_of_fits(fits: list[dict]) -> dict:
    """One seed's full-data entry: the mean of its trainings' metrics, and the trainings."""
    return {
        "balanced_accuracy": float(np.mean([f["balanced_accuracy"] for f in fits])),
        "macro_f1": float(np.mean([f["macro_f1"] for f in fits])),
        "recall": np.mean([f["recall"] for f in fits], axis=0).tolist(),
        "fits": fits,
    }


def labels_to_target(labels: list[int], values: list[float], target: float) -> int | None:
    """First label count at which ``values`` reach ``target``; ``None`` if never."""
    for n, v in zip(labels, values, strict=True):
        if v >= target - 1e-12:
            return int(n)
    return None


def _mean_std(rows: list[list[float]]) -> tuple[list[float], list[float], list[int]]:
    """Mean and std per round over seeds; curves cut short (pool exhausted) are skipped."""
    length = max(len(r) for r in rows)
    means, stds, support = [], [], []
    for i in range(length):
        column = np.array([r[i] for r in rows if len(r) > i], dtype=np.float64)
        means.append(float(column.mean()))
        stds.append(float(column.std()))
        support.append(int(column.shape[0]))
    return means, stds, support


def censored_summary(values: list[int | None], budget: int) -> dict:
    """Mean/std of labels-to-target over seeds, counting a miss as the whole budget.

    A miss means "more than ``budget``", so the mean is a lower bound when ``missed > 0``.
    """
    filled = np.array([budget if v is None else v for v in values], dtype=np.float64)
    return {
        "mean": float(filled.mean()) if filled.size else None,
        "std": float(filled.std()) if filled.size else None,
        "missed": int(sum(v is None for v in values)),
        "seeds": len(values),
    }


def summarize(raw: dict, *, default_strategy: str, class_names: list[str] | None = None) -> dict:
    """The ``results.json`` document of a simulation.

    ``labels_to_target.<strategy>`` reads the mean curve against ``target_fraction`` of the
    mean full-data balanced accuracy; ``labels_to_target_per_seed`` compares each seed's
    curve with that seed's own full-data score, which is what the benchmarks average.
    """
    cfg = raw["config"]
    fraction = cfg["target_fraction"]
    full = raw["full_data_per_seed"]
    result: dict = {
        "config": cfg,
        "dataset": {
            "n_items": int(sum(raw["class_counts"])),
            "class_counts": raw["class_counts"],
            "class_names": class_names or [str(c) for c in range(raw["num_classes"])],
        },
        "default_strategy": default_strategy,
        "strategies": raw["strategies"],
        "curves": {},
        "labels_to_target": {},
        "labels_to_target_per_seed": {},
        "labels_to_target_summary": {},
        "stop_signal_at": {},
    }
    target = None
    if full:
        bacc = np.array([m["balanced_accuracy"] for m in full])
        f1 = np.array([m["macro_f1"] for m in full])
        target = fraction * float(bacc.mean())
        fits = [m.get("fits") or [m] for m in full]
        result["full_data"] = {
            "balanced_accuracy_mean": float(bacc.mean()),
            "balanced_accuracy_std": float(bacc.std()),
            # How far one seed's trainings lie apart: what the target would move by if it
            # rested on a single training.
            "fits_per_seed": [len(f) for f in fits],
            "fit_range_per_seed": [
                [min(t["balanced_accuracy"] for t in f), max(t["balanced_accuracy"] for t in f)]
                for f in fits
            ],
            "macro_f1_mean": float(f1.mean()),
            "macro_f1_std": float(f1.std()),
            "per_seed": full,
            "target_balanced_accuracy": target,
        }
    else:
        result["full_data"] = None
    for name, runs in raw["curves_per_seed"].items():
        longest = max(runs, key=lambda r: len(r["labels"]))
        ba_mean, ba_std, support = _mean_std([r["balanced_accuracy"] for r in runs])
        f1_mean, f1_std, _ = _mean_std([r["macro_f1"] for r in runs])
        result["curves"][name] = {
            "labels": longest["labels"],
            "balanced_accuracy_mean": ba_mean,
            "balanced_accuracy_std": ba_std,
            "macro_f1_mean": f1_mean,
            "macro_f1_std": f1_std,
            "seeds_per_round": support,
            "per_seed": runs,
        }
        # Where ml.stopping first said "more labels stop paying", per seed (None: never).
        result["stop_signal_at"][name] = [r.get("stop_signal_at") for r in runs]
        if target is None:
            continue
        result["labels_to_target"][name] = labels_to_target(longest["labels"], ba_mean, target)
        per_seed = [
            labels_to_target(r["labels"], r["balanced_accuracy"], fraction * m["balanced_accuracy"])
            for r, m in zip(runs, full, strict=True)
        ]
        result["labels_to_target_per_seed"][name] = per_seed
        # A seed that missed ran to the end of its budget (or of the pool).
        spent = max(r["labels"][-1] for r in runs)
        result["labels_to_target_summary"][name] = censored_summary(per_seed, spent)
    return result


def plot_curves(results: dict, path: str | Path, *, metric: str = "balanced_accuracy") -> Path:
    """Learning curves (mean and a ±1 std band per strategy) with the target line, as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, curve in results["curves"].items():
        labels = np.array(curve["labels"])
        mean = np.array(curve[f"{metric}_mean"])
        std = np.array(curve[f"{metric}_std"])
        style = "--" if name == "random" else "-"
        (line,) = ax.plot(labels, mean, style, label=name, linewidth=1.8)
        ax.fill_between(labels, mean - std, mean + std, color=line.get_color(), alpha=0.18)
    full = results.get("full_data")
    if full and metric == "balanced_accuracy":
        ax.axhline(full["target_balanced_accuracy"], color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            f"{results['config']['target_fraction']:.0%} of full data",
            (ax.get_xlim()[0], full["target_balanced_accuracy"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
            color="grey",
        )
    ax.set_xlabel("labels")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"Active learning, {len(results['config']['seeds'])} seeds (mean ± std)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def merge_results(parts: list[dict]) -> dict:
    """One ``results.json`` document from simulations of the same data and settings run
    apart (other seeds, other strategies: a slow benchmark split over processes).

    Runs are matched by seed: each part's ``per_seed`` lists follow its ``config.seeds``.
    Every strategy must have run on every seed. A seed's full-data reference is the mean of
    the distinct trainings that the parts hold (one training appearing in two parts counts
    once; the same training seed with another result, from another CPU, counts twice), so a
    part that ran only full-data trainings (no strategy) adds to the reference; a result
    that predates ``fits`` counts as one training with its seed's first training seed.
    Raises ``ValueError`` when the parts differ in data or settings, or when a strategy
    lacks a seed another has.
    """
    if not parts:
        raise ValueError("merge_results needs at least one result")
    ignore = {"seeds", "full_data_fits"}
    # Results saved before the learner's warm start was recorded trained from scratch. The
    # full-data reference always does, so a part with no strategy fits any recipe.
    recipe = {"warm_start_steps": 0, "full_retrain_every": 0}
    parts = sorted(parts, key=lambda part: not part["strategies"])
    first = parts[0]

    def settings_of(part: dict) -> dict:
        skip = ignore if part["strategies"] else ignore | set(recipe)
        return {k: v for k, v in (recipe | part["config"]).items() if k not in skip}

    settings = settings_of(first)
    for part in parts[1:]:
        other = settings_of(part)
        if not part["strategies"]:
            other |= {k: settings.get(k) for k in recipe}
        differ = sorted(
            k for k in settings.keys() | other.keys() if settings.get(k) != other.get(k)
        )
        if differ:
            raise ValueError(f"results differ in settings: {', '.join(differ)}")
        if part["dataset"]["class_counts"] != first["dataset"]["class_counts"]:
            raise ValueError("results are of different data (class counts differ)")
    # Per seed, the distinct trainings: the same training seed can give another model on
    # another CPU (floating point), and then both count.
    trainings: dict[int, dict[tuple, dict]] = {}
    curves: dict[str, dict[int, dict]] = {}
    for part in parts:
        seeds = part["config"]["seeds"]
        if part.get("full_data"):
            for seed, metrics in zip(seeds, part["full_data"]["per_seed"], strict=True):
                fits = metrics.get("fits") or [{"seed": full_data_seed(seed, 0)} | metrics]
                for fit in fits:
                    key = (fit["seed"], fit["balanced_accuracy"], fit["macro_f1"])
                    trainings.setdefault(seed, {}).setdefault(key, fit)
        for name in part["strategies"]:
            runs = part["curves"][name]["per_seed"]
            for seed, run in zip(seeds, runs, strict=True):
                if seed in curves.setdefault(name, {}):
                    raise ValueError(f"strategy {name} ran seed {seed} in two results")
                curves[name][seed] = run
    full = {seed: mean_of_fits(list(fits.values())) for seed, fits in trainings.items()}
    seeds = sorted({s for runs in curves.values() for s in runs} or full)
    for name, runs in curves.items():
        missing = [s for s in seeds if s not in runs]
        if missing:
            raise ValueError(f"strategy {name} has no run for seed(s) {missing}")
    if full and any(s not in full for s in seeds):
        raise ValueError("the full-data fit is missing for some seeds")
    raw = {
        "config": recipe
        | first["config"]
        | {"seeds": seeds, "full_data_fits": min((len(f) for f in trainings.values()), default=0)},
        "num_classes": len(first["dataset"]["class_counts"]),
        "class_counts": first["dataset"]["class_counts"],
        "strategies": list(curves),
        "full_data_per_seed": [full[s] for s in seeds] if full else [],
        "curves_per_seed": {name: [runs[s] for s in seeds] for name, runs in curves.items()},
    }
    return summarize(
        raw,
        default_strategy=first["default_strategy"],
        class_names=first["dataset"]["class_names"],
    )

"""Do more labels still improve the model? The learning curve per model version (holdout
metrics against labels used, the simple baselines beside it: the linear probe and always
answering the majority class, and the model's accuracy on the random control slice), the
sentence that compares the latest version with them, and the stopping signal of
ml.stopping."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from loupe.insights.common import fetch_all, ratio
from loupe.labeling.models import GroundTruth
from loupe.learning.models import ModelVersion, Prediction, SelectionItem, SelectionRound
from loupe.projects.models import Project

# How many of the latest versions the stopping signal compares, and the size of the fixed
# stop set (items every one of them scored) it compares them on.
STOP_VERSIONS = 8
STOP_SET_SIZE = 2000
CONTROL_ON = "random control picks from the pool, labeled after this version scored them"
NO_CONTROL = {
    "on": CONTROL_ON,
    "n": 0,
    "accuracy": None,
    "balanced_accuracy": None,
    "interval": None,
    "interval_level": 0.95,
}

CONTROL_SQL = """
SELECT p.model_version_id, g.label_class_id, COUNT(*),
       SUM(CASE WHEN p.predicted_class_id = g.label_class_id THEN 1 ELSE 0 END)
FROM {prediction} p
JOIN {truth} g ON g.item_id = p.item_id
WHERE p.model_version_id IN (SELECT id FROM {version} WHERE project_id = %s)
  AND g.needs_review = %s
  AND p.item_id IN (
      SELECT s.item_id FROM {pick} s JOIN {round} r ON r.id = s.selection_round_id
      WHERE r.project_id = %s AND s.is_control = %s
  )
GROUP BY p.model_version_id, g.label_class_id
""".format_map(
    {
        "prediction": Prediction._meta.db_table,
        "truth": GroundTruth._meta.db_table,
        "version": ModelVersion._meta.db_table,
        "pick": SelectionItem._meta.db_table,
        "round": SelectionRound._meta.db_table,
    }
)


def control_sql(project: Project) -> tuple[str, list]:
    return CONTROL_SQL, [project.pk, False, project.pk, True]


def control_slice_scores(project: Project) -> dict[int, dict]:
    """Per model version: its accuracy and balanced accuracy on the random control picks
    that were labeled after it scored them. Those items were drawn at random from the pool
    and never trained this version, so this is an unbiased view of how it does on the
    data it will meet, beside the holdout's. `interval` is the 95% Wilson interval of the
    accuracy, so a figure on a dozen picks reads as such."""
    from ml.metrics import proportion_interval

    per_class: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    for version_id, class_id, n, correct in fetch_all(*control_sql(project)):
        per_class[version_id][class_id] = (n, correct)
    scores = {}
    for version_id, classes in per_class.items():
        n = sum(v[0] for v in classes.values())
        correct = sum(v[1] for v in classes.values())
        recalls = [c / k for k, c in classes.values() if k]
        scores[version_id] = {
            **NO_CONTROL,
            "n": n,
            "accuracy": ratio(correct, n),
            "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
            "interval": proportion_interval(correct, n),
        }
    return scores


def _metric(metrics: dict, name: str) -> float | None:
    value = (metrics or {}).get(name)
    return float(value) if value is not None else None


def _majority(metrics: dict, baseline: dict) -> tuple[float | None, str | None]:
    """Balanced accuracy of always answering the majority class, on this version's holdout.
    Versions trained before it was recorded get it from their holdout's class supports: any
    one class the holdout holds scores 1/k over its k classes."""
    stored = baseline.get("majority_class")
    if stored:
        return _metric(stored, "balanced_accuracy"), stored.get("name")
    present = sum(1 for c in metrics.get("per_class") or [] if c.get("support"))
    return (1.0 / present, "always answering one class") if present else (None, None)


def learning_curve(*, project: Project) -> dict:
    """One point per model version, oldest first: labels used, holdout metrics of the model
    (with the 95% interval of its balanced accuracy and its calibration), of the linear-probe
    and majority-class baselines, and its scores on the random control slice; for pairs,
    ROC AUC and EER (with their intervals), TAR at FAR 1% and 0.1% (and the smallest FAR the
    holdout can measure), the threshold, the holdout in words and the baseline's ROC AUC and
    EER too; for detection, mAP@0.5 (with its interval over resampled pages), COCO mAP, AP
    of small objects, and mAP@0.5 on the version's own training pages."""
    versions = list(
        ModelVersion.objects.filter(project=project)
        .order_by("version")
        .values("id", "version", "labels_used", "metrics", "baseline_metrics", "created_at")
    )
    control = control_slice_scores(project)
    points = []
    for v in versions:
        metrics, baseline = v["metrics"] or {}, v["baseline_metrics"] or {}
        majority, majority_name = _majority(metrics, baseline)
        calibration = metrics.get("calibration") or {}
        points.append(
            {
                "version": v["version"],
                "model_version_id": v["id"],
                "created_at": v["created_at"],
                "labels_used": v["labels_used"],
                "holdout_size": metrics.get("n", metrics.get("n_pairs", metrics.get("n_pages"))),
                "balanced_accuracy": _metric(metrics, "balanced_accuracy"),
                "balanced_accuracy_interval": (metrics.get("intervals") or {}).get(
                    "balanced_accuracy"
                ),
                "macro_f1": _metric(metrics, "macro_f1"),
                "accuracy": _metric(metrics, "accuracy"),
                "baseline_balanced_accuracy": _metric(baseline, "balanced_accuracy"),
                "baseline_macro_f1": _metric(baseline, "macro_f1"),
                "baseline_name": baseline.get("name"),
                "majority_balanced_accuracy": majority,
                "majority_name": majority_name,
                "ece": _metric(metrics, "ece"),
                "temperature": _metric(calibration, "temperature"),
                "ece_calibrated": _metric(calibration.get("after") or {}, "ece"),
                "control": control.get(v["id"], NO_CONTROL),
                # Pair verification's figures (None for other task types).
                "roc_auc": _metric(metrics, "roc_auc"),
                "roc_auc_interval": (metrics.get("intervals") or {}).get("roc_auc"),
                "eer": _metric(metrics, "eer"),
                "eer_interval": (metrics.get("intervals") or {}).get("eer"),
                "tar_at_far_1pct": _metric(metrics, "tar_at_far_1pct"),
                "tar_at_far_0_1pct": _metric(metrics, "tar_at_far_0_1pct"),
                "far_resolution": _metric(metrics, "far_resolution"),
                "threshold_distance": _metric(metrics, "threshold_distance"),
                "holdout": metrics.get("holdout"),
                "baseline_roc_auc": _metric(baseline, "roc_auc"),
                "baseline_eer": _metric(baseline, "eer"),
                # Object detection's figures (None for other task types).
                "map50": _metric(metrics, "map50"),
                "map50_interval": (metrics.get("intervals") or {}).get("map50"),
                "map": _metric(metrics, "map"),
                "ap_small": _metric(metrics, "ap_small"),
                "holdout_boxes": metrics.get("n_boxes"),
                "train_pages_map50": _metric(baseline, "map50"),
            }
        )
    return {"versions": points}


def _versus(score: float, interval: list[float] | None, other: float) -> str:
    """Where a baseline stands against the model's holdout score and its interval."""
    if interval:
        if interval[0] > other:
            return "better"
        if interval[1] < other:
            return "worse"
        return "level"
    return "ahead" if score > other else "behind"


# Per verdict: the words before the baselines, and after one or after both of them.
_VERDICT_WORDS = {
    "better": ("clearly better than", "", ""),
    "worse": ("worse than", "", ""),
    "level": (
        "not clearly better than",
        " on this holdout (its score lies inside the interval)",
        " on this holdout (their scores lie inside the interval)",
    ),
    "ahead": ("ahead of", " (no interval to tell by how much)", " (no interval to tell)"),
    "behind": ("not ahead of", "", ""),
}


def _named(name: str) -> str:
    return name if name.startswith(("the ", "always ")) else f"the {name}"


def _verdict_words(verdicts: list[tuple[str, str]]) -> str:
    """ "clearly better than both A and B", or one clause per baseline when they differ."""
    if len(verdicts) == 2 and verdicts[0][1] == verdicts[1][1]:
        before, _, after = _VERDICT_WORDS[verdicts[0][1]]
        return f"{before} both {verdicts[0][0]} and {verdicts[1][0]}{after}"
    clauses = []
    for name, verdict in verdicts:
        before, after, _ = _VERDICT_WORDS[verdict]
        clauses.append(f"{before} {name}{after}")
    return "; ".join(clauses)


def baseline_comparison(points: list[dict]) -> dict | None:
    """Is the latest version better than doing nothing clever? Its holdout balanced accuracy
    with the 95% interval against the majority-class and linear-probe baselines on the same
    holdout, and its accuracy on the random control slice, in one or two sentences. None
    before any version has holdout metrics."""
    latest = next((p for p in reversed(points) if p["balanced_accuracy"] is not None), None)
    if latest is None:
        return None
    score, interval = latest["balanced_accuracy"], latest["balanced_accuracy_interval"]
    figure = f"{score:.2f}"
    if interval:
        figure += f" (95% interval {interval[0]:.2f}–{interval[1]:.2f}"
        figure += f", {latest['holdout_size']} holdout items)"
    else:
        figure += f" on {latest['holdout_size'] or 0} holdout items (too few for an interval)"
    baselines = [
        (latest["majority_name"] or "the majority class", latest["majority_balanced_accuracy"]),
        (latest["baseline_name"] or "the linear probe", latest["baseline_balanced_accuracy"]),
    ]
    parts, verdicts = [], {}
    for name, value in baselines:
        if value is None:
            continue
        verdicts[name] = _versus(score, interval, value)
        parts.append((f"{_named(name)} ({value:.2f})", verdicts[name]))
    message = (
        f"v{latest['version']}, trained on {latest['labels_used']} labels, has a balanced "
        f"accuracy of {figure}"
    )
    message += (": " + _verdict_words(parts) + ".") if parts else "."
    control = latest["control"]
    if control["n"]:
        low, high = control["interval"]
        message += (
            f" On {control['n']} random pool items labeled after it scored them (the control"
            f" slice) its accuracy is {control['accuracy']:.2f} ({low:.2f}–{high:.2f})."
        )
    else:
        message += " No random control pick it scored has been labeled yet."
    return {
        "version": latest["version"],
        "verdicts": verdicts,
        "clearly_better": bool(verdicts) and all(v == "better" for v in verdicts.values()),
        "message": message,
    }


def _stop_set_predictions(version_ids: list[int]) -> tuple[list[np.ndarray], int]:
    """Each version's predicted class on a fixed stop set: the first STOP_SET_SIZE items the
    oldest of them scored that every one of them scored (unlabeled pool items, so the set
    costs no labels)."""
    candidates = list(
        Prediction.objects.filter(model_version_id=version_ids[0])
        .order_by("item_id")
        .values_list("item_id", flat=True)[: STOP_SET_SIZE * 2]
    )
    if not candidates:
        return [np.empty(0, dtype=np.int64) for _ in version_ids], 0
    # The id range (redundant with the list) lets PostgreSQL read each version's slice of
    # the (model_version, item) index instead of testing the list against every prediction.
    rows = Prediction.objects.filter(
        model_version_id__in=version_ids,
        item_id__gte=candidates[0],
        item_id__lte=candidates[-1],
        item_id__in=candidates,
    ).values_list("item_id", "model_version_id", "predicted_class_id")
    by_item: dict[int, dict[int, int]] = defaultdict(dict)
    for item_id, version_id, class_id in rows:
        by_item[item_id][version_id] = class_id or -1
    stop_set = sorted(i for i, v in by_item.items() if len(v) == len(version_ids))
    stop_set = stop_set[:STOP_SET_SIZE]
    return [
        np.array([by_item[i][vid] for i in stop_set], dtype=np.int64) for vid in version_ids
    ], len(stop_set)


def stopping(*, project: Project) -> dict:
    """ml.stopping's verdict over the latest versions: stable predictions on the stop set
    and a flat holdout balanced accuracy, side by side with the evidence."""
    from ml.stopping import stopping_signal

    versions = list(
        ModelVersion.objects.filter(project=project)
        .order_by("-version")
        .values("id", "version", "labels_used", "metrics")[:STOP_VERSIONS]
    )[::-1]
    if len(versions) < 2:
        return {
            "available": False,
            "versions": [v["version"] for v in versions],
            "message": "The stopping signal compares successive model versions; "
            f"{len(versions)} trained so far, at least 2 needed.",
        }
    predictions, size = _stop_set_predictions([v["id"] for v in versions])
    if size == 0:
        return {
            "available": False,
            "versions": [v["version"] for v in versions],
            "message": "No pool item was scored by each of the latest versions, so there is "
            "no fixed set to compare their predictions on.",
        }
    # The holdout figure that says whether more labels still pay: mAP@0.5 for boxes.
    headline = "map50" if project.task_type == "object_detection" else "balanced_accuracy"
    metric = [_metric(v["metrics"], headline) for v in versions]
    has_metric = all(m is not None for m in metric)
    # Codes, not class ids: ml.stopping counts classes with bincount.
    codes = {c: i for i, c in enumerate(sorted({int(x) for p in predictions for x in p}))}
    coded = [np.array([codes[int(x)] for x in p], dtype=np.int64) for p in predictions]
    signal = stopping_signal(
        coded,
        labels=[v["labels_used"] for v in versions] if has_metric else None,
        holdout_metric=metric if has_metric else None,
        num_classes=max(1, len(codes)),
    )
    return {
        "available": True,
        "versions": [v["version"] for v in versions],
        "stop_set_size": size,
        **signal.as_dict(),
    }

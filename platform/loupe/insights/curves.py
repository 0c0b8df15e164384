"""Do more labels still improve the model? The learning curve per model version (holdout
metrics against labels used, the simple baseline beside it, and the model's accuracy on the
random control slice), and the stopping signal of ml.stopping."""

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


def learning_curve(*, project: Project) -> dict:
    """One point per model version, oldest first: labels used, holdout metrics of the model
    and of the baseline, and its scores on the random control slice."""
    versions = list(
        ModelVersion.objects.filter(project=project)
        .order_by("version")
        .values("id", "version", "labels_used", "metrics", "baseline_metrics", "created_at")
    )
    control = control_slice_scores(project)
    points = []
    for v in versions:
        metrics, baseline = v["metrics"] or {}, v["baseline_metrics"] or {}
        points.append(
            {
                "version": v["version"],
                "model_version_id": v["id"],
                "created_at": v["created_at"],
                "labels_used": v["labels_used"],
                "holdout_size": metrics.get("n"),
                "balanced_accuracy": _metric(metrics, "balanced_accuracy"),
                "macro_f1": _metric(metrics, "macro_f1"),
                "accuracy": _metric(metrics, "accuracy"),
                "baseline_balanced_accuracy": _metric(baseline, "balanced_accuracy"),
                "baseline_macro_f1": _metric(baseline, "macro_f1"),
                "baseline_name": baseline.get("name"),
                "control": control.get(v["id"], NO_CONTROL),
            }
        )
    return {"versions": points}


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
    metric = [_metric(v["metrics"], "balanced_accuracy") for v in versions]
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

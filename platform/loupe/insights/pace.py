"""How fast labels arrive, from whom, and when each class target is reached at that pace."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Max, Min, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from loupe.insights.balance import ground_truth_counts, pool_predicted_counts
from loupe.insights.common import DEFAULT_WINDOW_DAYS, classes_of, window_start
from loupe.labeling.models import Annotation, Decision, GroundTruth
from loupe.projects.models import Project

# Below this many recent labels the observed hit rate is too noisy; the pool's predicted
# share stands in for it.
MIN_LABELS_FOR_HIT_RATE = 30


def _answered_at():
    # Label Studio's time of the answer when known; Loupe's receipt time otherwise.
    return Coalesce("ls_updated_at", "created_at")


def throughput(*, project: Project, days: int = DEFAULT_WINDOW_DAYS) -> dict:
    """Annotations and new ground-truth labels per day over the last `days` days (days
    without work included as zeros), and per annotator: all time and inside the window."""
    since = window_start(days)
    # One pass over the project's annotations (index-only on PostgreSQL) grouped by
    # annotator, day and whether inside the window; the per-day series and the per-annotator
    # figures are both sums of these groups.
    groups = (
        Annotation.objects.filter(project=project, was_cancelled=False)
        .annotate(at=_answered_at())
        .annotate(
            day=TruncDate("at"),
            recent=ExpressionWrapper(Q(at__gte=since), output_field=BooleanField()),
        )
        .values_list("annotator", "day", "recent")
        .annotate(n=Count("*"), first=Min("at"), last=Max("at"))
        .order_by()
    )
    per_day: dict = defaultdict(int)
    by_annotator: dict[str, dict] = {}
    for annotator, day, recent, n, first_at, last_at in groups:
        row = by_annotator.setdefault(
            annotator, {"total": 0, "recent": 0, "first": first_at, "last": last_at}
        )
        row["total"] += n
        row["first"], row["last"] = min(row["first"], first_at), max(row["last"], last_at)
        if recent:
            row["recent"] += n
            per_day[day] += n
    labels = GroundTruth.objects.filter(project=project, needs_review=False).exclude(
        decided_by=Decision.IMPORTED
    )
    labels_per_day = dict(
        labels.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("*"))
        .order_by()
    )
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    series = [
        {
            "day": (first + timedelta(days=i)).isoformat(),
            "annotations": per_day.get(first + timedelta(days=i), 0),
            "labels": labels_per_day.get(first + timedelta(days=i), 0),
        }
        for i in range(days)
    ]
    annotators = sorted(
        ({"annotator": who, **row} for who, row in by_annotator.items()),
        key=lambda a: (-a["total"], a["annotator"]),
    )
    return {
        "days": days,
        "per_day": series,
        "annotations_in_window": sum(d["annotations"] for d in series),
        "labels_in_window": sum(d["labels"] for d in series),
        "annotators": [
            {
                "annotator": a["annotator"] or "(unknown)",
                "annotations": a["total"],
                "in_window": a["recent"],
                "first_at": a["first"],
                "last_at": a["last"],
            }
            for a in annotators
        ],
    }


def _label_rate(project: Project, days: int) -> tuple[float, int, dict[int, int]]:
    """(labels per day, labels in the window, labels per class in the window). The rate is
    taken over the time since the first label of the window, at least a day, so a project
    that started labeling yesterday is not diluted over the whole window."""
    since = window_start(days)
    recent = GroundTruth.objects.filter(
        project=project, needs_review=False, created_at__gte=since
    ).exclude(decided_by=Decision.IMPORTED)
    # Counts and the first label of the window in one grouped query.
    rows = list(
        recent.values_list("label_class_id")
        .annotate(n=Count("*"), first=Min("created_at"))
        .order_by()
    )
    by_class = {class_id: n for class_id, n, _ in rows}
    total = sum(by_class.values())
    if not total:
        return 0.0, 0, {}
    first = min(first for _, _, first in rows)
    span_days = max(1.0, (timezone.now() - first).total_seconds() / 86400.0)
    return total / span_days, total, by_class


def eta(*, project: Project, days: int = DEFAULT_WINDOW_DAYS) -> dict:
    """For each class with a target: labels still missing, the share of new labels that turn
    out to be this class (the hit rate), the labels needed at that rate, and the days until
    the target at the recent pace.

    The hit rate is the class's share among the labels of the last `days` days, which is what
    selection actually delivers; with fewer than MIN_LABELS_FOR_HIT_RATE recent labels, the
    latest model's predicted share of the pool stands in.
    """
    rate, recent_total, recent_by_class = _label_rate(project, days)
    truth = ground_truth_counts(project)
    predicted, version = pool_predicted_counts(project)
    pool_total = sum(predicted.values())
    rows = []
    for c in classes_of(project):
        labeled = truth[c.pk]["train"] + truth[c.pk]["holdout"]
        if recent_total >= MIN_LABELS_FOR_HIT_RATE:
            hit_rate, basis = recent_by_class.get(c.pk, 0) / recent_total, "recent labels"
        elif pool_total:
            hit_rate, basis = predicted.get(c.pk, 0) / pool_total, "predicted share of the pool"
        else:
            hit_rate, basis = None, None
        remaining = max(0, c.target_count - labeled) if c.target_count else None
        needed = (
            math.ceil(remaining / hit_rate)
            if remaining and hit_rate
            else (0 if remaining == 0 else None)
        )
        eta_days = needed / rate if needed is not None and rate > 0 else None
        rows.append(
            {
                "name": c.name,
                "target": c.target_count,
                "labeled": labeled,
                "remaining": remaining,
                "hit_rate": hit_rate,
                "hit_rate_basis": basis,
                "labels_needed": needed,
                "labels_per_day": rate * hit_rate if hit_rate is not None else None,
                "eta_days": eta_days,
                "eta_date": (timezone.now() + timedelta(days=eta_days)).date().isoformat()
                if eta_days is not None
                else None,
                "message": _eta_message(c.name, remaining, hit_rate, needed, basis, rate),
            }
        )
    return {
        "days": days,
        "labels_per_day": rate,
        "recent_labels": recent_total,
        "model_version": version,
        "pool_predicted": pool_total if version else None,
        "classes": rows,
    }


def _eta_message(name, remaining, hit_rate, needed, basis, rate) -> str:
    if remaining is None:
        return f"No target set for {name}."
    if remaining == 0:
        return f"Target for {name} reached."
    if hit_rate is None:
        return f"{remaining} more {name} needed; no labels or predictions yet to estimate from."
    if hit_rate == 0:
        return (
            f"{remaining} more {name} needed, but none among the {basis}: selection is not "
            "finding this class (add data that contains it, or a class-balanced strategy)."
        )
    shown = f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"
    pace = f" (about {needed / rate:.1f} days at {shown} labels a day)" if rate > 0 else ""
    return (
        f"About {needed} more labels to find {remaining} more {name}: "
        f"{hit_rate:.1%} of {basis} are {name}{pace}."
    )

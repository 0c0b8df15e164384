"""How fast labels arrive, from whom, and when each class target is reached at that pace."""

from __future__ import annotations

import math
from datetime import timedelta

from django.db.models import OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from loupe.insights.balance import pool_predicted_counts
from loupe.insights.common import DEFAULT_WINDOW_DAYS, day_start, window_first_day
from loupe.labeling.models import (
    Annotation,
    AnnotationDayCount,
    Decision,
    GroundTruth,
    LabelDayCount,
)
from loupe.labeling.selectors import ground_truth_counts
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes

# Below this many recent labels the observed hit rate is too noisy; the pool's predicted
# share stands in for it.
MIN_LABELS_FOR_HIT_RATE = 30


def _answered_at():
    # Label Studio's time of the answer when known; Loupe's receipt time otherwise.
    return Coalesce("ls_updated_at", "created_at")


def throughput(*, project: Project, days: int = DEFAULT_WINDOW_DAYS) -> dict:
    """Answers and new ground-truth labels per day over the last `days` days (UTC days,
    today included; days without work as zeros), and per annotator: all time and inside
    the window, with their first and last answer.

    Read from the per-day counts the database keeps (AnnotationDayCount, LabelDayCount):
    a few rows per annotator and day, whatever the number of annotations.
    """
    first = window_first_day(days)
    kept = AnnotationDayCount.objects.filter(project=project)
    per_day = dict(kept.filter(day__gte=first).values_list("day").annotate(n=Sum("n")).order_by())
    labels_per_day = dict(
        LabelDayCount.objects.filter(project=project, day__gte=first)
        .values_list("day")
        .annotate(n=Sum("n"))
        .order_by()
    )
    # First and last answer per annotator: one index probe each (answered_idx).
    answers = Annotation.objects.filter(
        project=project, annotator=OuterRef("annotator"), was_cancelled=False
    ).annotate(at=_answered_at())
    annotators = (
        kept.values("annotator")
        .annotate(
            total=Sum("n"),
            recent=Coalesce(Sum("n", filter=Q(day__gte=first)), 0),
            first_at=Subquery(answers.order_by("at").values("at")[:1]),
            last_at=Subquery(answers.order_by("-at").values("at")[:1]),
        )
        .filter(total__gt=0)
        .order_by("-total", "annotator")
    )
    series = [
        {
            "day": (first + timedelta(days=i)).isoformat(),
            "annotations": per_day.get(first + timedelta(days=i), 0),
            "labels": labels_per_day.get(first + timedelta(days=i), 0),
        }
        for i in range(days)
    ]
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
                "first_at": a["first_at"],
                "last_at": a["last_at"],
            }
            for a in annotators
        ],
    }


def _label_rate(project: Project, days: int) -> tuple[float, int, dict[int, int]]:
    """(labels per day, labels in the window, labels per class in the window). The rate is
    taken over the time since the first label of the window, at least a day, so a project
    that started labeling yesterday is not diluted over the whole window."""
    first_day = window_first_day(days)
    rows = (
        LabelDayCount.objects.filter(project=project, day__gte=first_day)
        .values_list("label_class_id")
        .annotate(n=Sum("n"))
        .order_by()
    )
    by_class = {class_id: n for class_id, n in rows if n}
    total = sum(by_class.values())
    if not total:
        return 0.0, 0, {}
    # The first new label of the window: one step along the (project, created_at) index.
    first = (
        GroundTruth.objects.filter(
            project=project, needs_review=False, created_at__gte=day_start(first_day)
        )
        .exclude(decided_by=Decision.IMPORTED)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    span_days = max(1.0, (timezone.now() - first).total_seconds() / 86400.0) if first else 1.0
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
    for c in project_classes(project=project):
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

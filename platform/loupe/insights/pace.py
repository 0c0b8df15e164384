"""How fast labels arrive, from whom, and when each class target is reached at that pace."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from loupe.datasets.models import ItemState
from loupe.insights.balance import pool_predicted_counts, state_counts
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
HOUR, DAY = 3600.0, 86400.0
# The shortest time a pace is taken over: three labels in ten minutes are three an hour, not
# eighteen.
MIN_RATE_SPAN = HOUR
RECENT, PREDICTED = "recent labels", "predicted share of the pool"


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


@dataclass(frozen=True)
class LabelPace:
    """New labels of the window and the time they took: from the first of them to now, at
    least MIN_RATE_SPAN, so a burst of three labels is not read as a rate of thousands."""

    labels: int
    by_class: dict[int, int]
    span_seconds: float

    @property
    def per_hour(self) -> float:
        return self.labels * HOUR / self.span_seconds if self.labels else 0.0

    @property
    def per_day(self) -> float | None:
        """Labels a day, only once a whole day has passed: one afternoon's pace says nothing
        about nights and weekends."""
        if not self.labels or self.span_seconds < DAY:
            return None
        return self.labels * DAY / self.span_seconds

    def message(self, days: int) -> str:
        if not self.labels:
            return f"No new labels in the last {days} days."
        noun = "label" if self.labels == 1 else "labels"
        if self.per_day is None:
            return (
                f"{self.labels} {noun} in the last {_span_words(self.span_seconds)}: "
                f"{_amount(self.per_hour)} an hour."
            )
        return (
            f"{self.labels} {noun} over the last {_span_words(self.span_seconds)}: "
            f"{_amount(self.per_day)} a day."
        )


def label_pace(project: Project, days: int) -> LabelPace:
    """The project's new labels (people's, not imports) in the last `days` days, per class,
    and the time since the first of them."""
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
        return LabelPace(labels=0, by_class={}, span_seconds=MIN_RATE_SPAN)
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
    elapsed = (timezone.now() - first).total_seconds() if first else 0.0
    return LabelPace(labels=total, by_class=by_class, span_seconds=max(MIN_RATE_SPAN, elapsed))


def _items_left(project: Project) -> int:
    """Items that can still become labels: unlabeled, queued or in annotation."""
    states = state_counts(project)
    return sum(states[s] for s in (ItemState.UNLABELED, ItemState.QUEUED, ItemState.IN_ANNOTATION))


def eta(*, project: Project, days: int = DEFAULT_WINDOW_DAYS) -> dict:
    """For each class with a target: labels still missing, the share of new labels that turn
    out to be this class (the hit rate), the labels needed at that rate, and the time until
    the target at the recent pace.

    The hit rate is the class's share among the labels of the last `days` days, which is what
    selection actually delivers; with fewer than MIN_LABELS_FOR_HIT_RATE recent labels, the
    latest model's predicted share of the pool stands in.

    No estimate promises more than the pool holds: the items left (unlabeled, queued, in
    annotation) may hold `pool_may_hold` of a class at its predicted share of the pool (the
    hit rate before any model). When that is short of the target, or the labels needed
    outnumber the items left, the class is `reachable: False` and no time is given.

    The pace is the window's new labels over the time since the first of them (at least an
    hour). Before a whole day has passed it is given per hour and the estimate in hours of
    labeling (`eta_hours`), not in calendar days.
    """
    pace = label_pace(project, days)
    truth = ground_truth_counts(project)
    predicted, version = pool_predicted_counts(project)
    pool_total = sum(predicted.values())
    items_left = _items_left(project)
    rows = []
    for c in project_classes(project=project):
        labeled = truth[c.pk]["train"] + truth[c.pk]["holdout"]
        predicted_share = predicted.get(c.pk, 0) / pool_total if pool_total else None
        if pace.labels >= MIN_LABELS_FOR_HIT_RATE:
            hit_rate, basis = pace.by_class.get(c.pk, 0) / pace.labels, RECENT
        elif predicted_share is not None:
            hit_rate, basis = predicted_share, PREDICTED
        else:
            hit_rate, basis = None, None
        share = predicted_share if predicted_share is not None else hit_rate
        may_hold = share * items_left if share is not None else None
        remaining = max(0, c.target_count - labeled) if c.target_count else None
        needed = (
            math.ceil(remaining / hit_rate)
            if remaining and hit_rate
            else (0 if remaining == 0 else None)
        )
        reachable = _reachable(remaining, needed, may_hold, items_left)
        if reachable is False:
            needed = None
        eta_days = needed / pace.per_day if needed is not None and pace.per_day else None
        eta_hours = (
            needed / pace.per_hour
            if needed is not None and pace.per_day is None and pace.per_hour > 0
            else None
        )
        rows.append(
            {
                "name": c.name,
                "target": c.target_count,
                "labeled": labeled,
                "remaining": remaining,
                "hit_rate": hit_rate,
                "hit_rate_basis": basis,
                "predicted_share": predicted_share,
                "pool_may_hold": round(may_hold) if may_hold is not None else None,
                "reachable": reachable,
                "labels_needed": needed,
                "labels_per_day": pace.per_day * hit_rate
                if pace.per_day is not None and hit_rate is not None
                else None,
                "eta_days": eta_days,
                "eta_hours": eta_hours,
                "eta_date": (timezone.now() + timedelta(days=eta_days)).date().isoformat()
                if eta_days is not None
                else None,
                "message": _eta_message(
                    c.name,
                    remaining=remaining,
                    hit_rate=hit_rate,
                    basis=basis,
                    needed=needed,
                    reachable=reachable,
                    share=share,
                    share_basis=PREDICTED if predicted_share is not None else basis,
                    may_hold=may_hold,
                    items_left=items_left,
                    pace=pace,
                ),
            }
        )
    return {
        "days": days,
        "recent_labels": pace.labels,
        "rate_span_hours": pace.span_seconds / HOUR if pace.labels else None,
        "labels_per_hour": pace.per_hour,
        "labels_per_day": pace.per_day,
        "rate_message": pace.message(days),
        "items_left": items_left,
        "model_version": version,
        "pool_predicted": pool_total if version else None,
        "classes": rows,
    }


def _reachable(remaining, needed, may_hold, items_left) -> bool | None:
    if remaining is None:
        return None
    if remaining == 0:
        return True
    if items_left == 0:
        return False
    if may_hold is None:
        return None
    if remaining > may_hold or (needed is not None and needed > items_left):
        return False
    # Enough in the pool, but no pace of finding the class to promise it by.
    return True if needed is not None else None


def _eta_message(
    name,
    *,
    remaining,
    hit_rate,
    basis,
    needed,
    reachable,
    share,
    share_basis,
    may_hold,
    items_left,
    pace,
) -> str:
    if remaining is None:
        return f"No target set for {name}."
    if remaining == 0:
        return f"Target for {name} reached."
    if items_left == 0:
        return (
            f"{remaining} more {name} needed, but no item is left to label: "
            f"import images that contain {name}."
        )
    if reachable is False:
        held = (
            f"at the {share:.1%} the model predicts"
            if share_basis == PREDICTED
            else f"at the {share:.1%} of recent labels"
        )
        text = (
            f"The current pool cannot meet the {name} target: {remaining:,} more needed, and "
            f"the {items_left:,} items left may hold about {round(may_hold):,} {name} {held}"
        )
        if basis == RECENT and hit_rate and remaining / hit_rate > items_left:
            text += (
                f"; at {hit_rate:.1%} of recent labels it would take about "
                f"{math.ceil(remaining / hit_rate):,} labels"
            )
        return text + f". Import more images that contain {name}."
    if hit_rate is None:
        return f"{remaining} more {name} needed; no labels or predictions yet to estimate from."
    if hit_rate == 0:
        return (
            f"{remaining} more {name} needed, but none among the {basis}: selection is not "
            "finding this class (add data that contains it, or a class-balanced strategy)."
        )
    if basis == RECENT:
        found = f"{hit_rate:.1%} of recent labels are {name}"
    else:
        found = f"the model predicts {hit_rate:.1%} of the pool as {name}"
    if pace.per_day is not None:
        days = _amount(needed / pace.per_day)
        when = f" (about {days} days at {_amount(pace.per_day)} labels a day)"
    elif pace.per_hour > 0:
        when = (
            f" (about {_amount(needed / pace.per_hour)} hours of labeling at "
            f"{_amount(pace.per_hour)} labels an hour)"
        )
    else:
        when = ""
    return f"About {needed:,} more labels to find {remaining:,} more {name}: {found}{when}."


def _amount(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:,.0f}"


def _span_words(seconds: float) -> str:
    hours = seconds / HOUR
    if hours < 24:
        return "hour" if round(hours, 1) == 1 else f"{hours:.1f} hours"
    return f"{hours / 24:.1f} days"

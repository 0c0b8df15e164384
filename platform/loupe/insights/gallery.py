"""The item gallery's reads: items filtered by uncertainty as well, each with its latest
prediction (for a pair, its p(same)), why it was picked, and where to label it."""

from __future__ import annotations

from django.db.models import F, OuterRef, QuerySet, Subquery

from loupe.datasets.models import Item
from loupe.datasets.selectors import item_list
from loupe.insights.common import latest_scored_version
from loupe.labeling.selectors import pick_task_url
from loupe.learning.models import Prediction, SelectionItem
from loupe.projects.models import Project
from loupe.tasktypes.pair_verification import PAIR_VERIFICATION

UNCERTAINTY_LEVELS = [
    ("0.5", "uncertain (≥ 0.5)"),
    ("0.8", "very uncertain (≥ 0.8)"),
    ("0.95", "coin flip (≥ 0.95)"),
]
ORDERS = [("newest", "newest first"), ("uncertain", "most uncertain first")]


def gallery_items(*, project: Project, filters: dict) -> QuerySet[Item]:
    """Items matching the gallery's filters: state, split, class, source (as the API does)
    and a minimum uncertainty under the latest scored model version."""
    items = item_list(project=project, filters=filters)
    version = latest_scored_version(project)
    try:
        threshold = float(filters.get("uncertainty") or 0)
    except ValueError:
        threshold = 0.0
    if threshold > 0:
        if version is None:
            return items.none()
        items = items.filter(
            predictions__model_version=version, predictions__uncertainty__gte=threshold
        )
    if filters.get("order") == "uncertain" and version is not None:
        latest = Prediction.objects.filter(item=OuterRef("pk"), model_version=version)
        # Unscored items (labeled ones, new imports) last on every database: PostgreSQL
        # puts NULL first in a descending order, SQLite last.
        items = items.annotate(u=Subquery(latest.values("uncertainty")[:1])).order_by(
            F("u").desc(nulls_last=True), "-id"
        )
    else:
        items = items.order_by("-id")
    return items


def gallery_details(*, project: Project, items: list[Item]) -> dict[int, dict]:
    """For each item on a page: its latest prediction and its latest pick (reason, control,
    round, Label Studio task link). Two queries for the whole page. A pair's prediction
    carries its p(same) too (the last of its probabilities, `p_same`); None elsewhere."""
    pairs = project.task_type == PAIR_VERIFICATION
    ids = [item.pk for item in items]
    details: dict[int, dict] = {pk: {"prediction": None, "pick": None} for pk in ids}
    predictions = (
        Prediction.objects.filter(item_id__in=ids)
        .select_related("predicted_class", "model_version")
        .order_by("item_id", "-model_version__version")
    )
    for p in predictions:
        if details[p.item_id]["prediction"] is None:
            details[p.item_id]["prediction"] = {
                "label": p.predicted_class.name if p.predicted_class else "?",
                "confidence": p.confidence,
                "uncertainty": p.uncertainty,
                "version": p.model_version.version,
                "p_same": float(p.probs[-1]) if pairs and p.probs else None,
            }
    picks = (
        SelectionItem.objects.filter(item_id__in=ids)
        .select_related("selection_round")
        .order_by("item_id", "-selection_round__number")
    )
    for pick in picks:
        if details[pick.item_id]["pick"] is None:
            details[pick.item_id]["pick"] = {
                "round": pick.selection_round.number,
                "reason": pick.reason,
                "is_control": pick.is_control,
                "task_url": pick_task_url(project, pick),
            }
    return details

"""Where the data stands per class: ground truth, work in flight, what the model expects in
the pool, progress against targets, and how imbalanced the training set is."""

from __future__ import annotations

import numpy as np
from django.core.cache import cache
from django.db.models import Count, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from loupe.datasets.models import Item, ItemState, ItemStateCount, Split
from loupe.insights.common import EFFECTIVE_BETA, latest_scoring_run, ratio
from loupe.labeling.selectors import ground_truth_counts
from loupe.learning.models import Prediction, SelectionItem
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes

IN_FLIGHT = (ItemState.QUEUED, ItemState.IN_ANNOTATION)


def _in_flight_by_expected_class(project: Project) -> dict[tuple[int | None, str], int]:
    """Queued and in-annotation items grouped by the class the model expected when it picked
    them (the latest pick's prediction; None for cold-start picks)."""
    expected = SelectionItem.objects.filter(item=OuterRef("pk")).order_by(
        "-selection_round__number"
    )
    rows = (
        Item.objects.filter(project=project, state__in=IN_FLIGHT)
        .annotate(expected=Subquery(expected.values("predicted_class_id")[:1]))
        .values_list("expected", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(class_id, state): n for class_id, state, n in rows}


def _scored_counts(run) -> dict[int | None, int]:
    """Predicted class counts over everything the run's model version scored. A finished
    scoring never changes, so the counts are cached per run (the one full pass over the
    predictions a large pool needs)."""
    # The creation time keeps a reused id (a restored or rebuilt database) from a stale hit.
    key = f"insights:scored-counts:{run.pk}:{run.model_version_id}:{run.created_at.timestamp()}"
    counts = cache.get(key)
    if counts is None:
        counts = dict(
            Prediction.objects.filter(model_version_id=run.model_version_id)
            .values_list("predicted_class_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        cache.set(key, counts, timeout=None)
    return counts


def pool_predicted_counts(project: Project) -> tuple[dict[int | None, int], int | None]:
    """Unlabeled pool items per class the latest scored model version predicts, and that
    version's number (None before any scoring).

    Items leave the unlabeled pool only by being picked, so the count is: everything the
    version scored (cached per run), less its predictions of items picked since that are
    no longer unlabeled in the pool. The subtraction touches picks, not the pool.
    """
    run = latest_scoring_run(project)
    if run is None:
        return {}, None
    counts = dict(_scored_counts(run))
    left = (
        Prediction.objects.filter(
            model_version_id=run.model_version_id,
            item__selections__selection_round__project=project,
            item__selections__selection_round__created_at__gte=run.created_at,
        )
        .exclude(item__state=ItemState.UNLABELED, item__split=Split.POOL)
        .values_list("predicted_class_id")
        .annotate(n=Count("item_id", distinct=True))
        .order_by()
    )
    for class_id, n in left:
        counts[class_id] = counts.get(class_id, 0) - n
    return counts, run.model_version.version


def project_item_totals(projects: QuerySet) -> QuerySet:
    """The projects, each annotated with `item_count` from the kept counts."""
    total = (
        ItemStateCount.objects.filter(project=OuterRef("pk"))
        .values("project")
        .annotate(total=Sum("n"))
        .values("total")
    )
    return projects.annotate(item_count=Coalesce(Subquery(total), 0))


def state_counts(project: Project) -> dict[str, int]:
    """Items per state, read from the counts the database keeps (ItemStateCount)."""
    found = dict(ItemStateCount.objects.filter(project=project).values_list("state", "n"))
    return {state: found.get(state, 0) for state in ItemState.values}


def class_balance(*, project: Project) -> dict:
    """Per class: ground truth (train / holdout), queued and in annotation (by the class the
    model expected), predicted in the pool, and progress against the target."""
    classes = project_classes(project=project)
    truth = ground_truth_counts(project)
    flight = _in_flight_by_expected_class(project)
    predicted, version = pool_predicted_counts(project)
    rows = []
    for c in classes:
        labeled = truth[c.pk]["train"] + truth[c.pk]["holdout"]
        target = c.target_count
        rows.append(
            {
                "id": c.pk,
                "name": c.name,
                "target": target,
                "ground_truth": labeled,
                "train": truth[c.pk]["train"],
                "holdout": truth[c.pk]["holdout"],
                "needs_review": truth[c.pk]["needs_review"],
                "queued": flight.get((c.pk, ItemState.QUEUED), 0),
                "in_annotation": flight.get((c.pk, ItemState.IN_ANNOTATION), 0),
                "predicted_in_pool": predicted.get(c.pk, 0) if version else None,
                "progress": min(1.0, labeled / target) if target else None,
                "remaining": max(0, target - labeled) if target else None,
            }
        )
    states = state_counts(project)
    return {
        "model_version": version,
        "classes": rows,
        # In-flight items no model guessed (cold start) and the whole project's states.
        "unassigned": {
            "queued": flight.get((None, ItemState.QUEUED), 0),
            "in_annotation": flight.get((None, ItemState.IN_ANNOTATION), 0),
        },
        "totals": {
            "items": sum(states.values()),
            "ground_truth": sum(r["ground_truth"] for r in rows),
            "needs_review": sum(r["needs_review"] for r in rows),
            "states": states,
            "targets": sum(r["target"] or 0 for r in rows),
            "targets_met": sum(1 for r in rows if r["target"] and r["remaining"] == 0),
            "classes_with_target": sum(1 for r in rows if r["target"]),
        },
    }


def effective_number(count: int, beta: float = EFFECTIVE_BETA) -> float:
    """Cui et al.'s effective number of samples, (1 - beta^n) / (1 - beta): how many
    independent examples n labels are worth once near-duplicates stop adding information."""
    return float((1.0 - beta**count) / (1.0 - beta))


def imbalance(*, project: Project) -> dict:
    """Imbalance of the labels training uses (everything labeled outside the holdout), the
    effective number of samples per class, and the loss weights training will apply with
    the project's `class_weighting`."""
    from ml.losses import class_weights

    classes = project_classes(project=project)
    truth = ground_truth_counts(project)
    counts = np.array([truth[c.pk]["train"] for c in classes], dtype=np.int64)
    weights = (
        class_weights(counts, method=project.class_weighting, beta=EFFECTIVE_BETA)
        if len(classes)
        else np.empty(0)
    )
    present = counts[counts > 0]
    majority = int(counts.argmax()) if counts.size and counts.max() > 0 else None
    minority = None
    if present.size:
        minority = int(np.where(counts > 0, counts, counts.max() + 1).argmin())
    return {
        "weighting": project.class_weighting,
        "beta": EFFECTIVE_BETA,
        "labels": int(counts.sum()),
        # Largest over smallest non-empty class; classes with no label are listed apart,
        # because no ratio describes "none yet".
        "ratio": float(present.max() / present.min()) if present.size else None,
        "majority": classes[majority].name if majority is not None else None,
        "minority": classes[minority].name if minority is not None else None,
        "empty_classes": [c.name for c, n in zip(classes, counts, strict=True) if n == 0],
        "classes": [
            {
                "name": c.name,
                "train": int(n),
                "share": ratio(float(n), float(counts.sum())),
                "effective_samples": effective_number(int(n)),
                "class_weight": float(w),
            }
            for c, n, w in zip(classes, counts, weights, strict=True)
        ],
    }

"""Writes of the labeling app, in one place for callers outside it.

The work lives in three modules: `sync` (Loupe -> Label Studio: project twin and pushes),
`events` (Label Studio -> Loupe: annotations, deletions, ground truth) with `consensus`
(the voting rule), and `reconcile` (the periodic pull that catches lost webhooks).
"""

from django.db import transaction

from loupe import jobs
from loupe.datasets.models import ItemState, Split
from loupe.errors import ApplicationError
from loupe.labeling.consensus import ground_truth_recompute, latest_votes
from loupe.labeling.events import (
    ApplyResult,
    annotations_apply,
    annotations_delete,
    events_apply,
    tasks_delete,
    webhook_receive,
)
from loupe.labeling.events import _rounds_complete as rounds_complete
from loupe.labeling.holdout import HoldoutAssigner
from loupe.labeling.models import Decision, GroundTruth
from loupe.labeling.reconcile import project_reconcile, projects_reconcile_all
from loupe.labeling.sync import (
    project_changed,
    project_sync,
    round_selected,
    rounds_push_pending,
    selection_round_push,
)
from loupe.projects.models import LabelClass

__all__ = [
    "ApplyResult",
    "annotations_apply",
    "annotations_delete",
    "events_apply",
    "ground_truth_recompute",
    "ground_truth_review",
    "project_changed",
    "project_reconcile",
    "project_sync",
    "projects_reconcile_all",
    "round_selected",
    "rounds_push_pending",
    "selection_round_push",
    "tasks_delete",
    "webhook_receive",
]


@transaction.atomic
def ground_truth_review(*, item, label_class_name: str) -> GroundTruth:
    """A reviewer decides an item's class (e.g. after a tie); votes no longer override it."""
    label_class = LabelClass.objects.filter(project=item.project, name=label_class_name).first()
    if label_class is None:
        raise ApplicationError(
            f"No class '{label_class_name}' in this project.", extra={"class": label_class_name}
        )
    votes = latest_votes(item.annotations.all()).get(item.pk, [])
    chosen = sum(v.label == label_class.pk for v in votes)
    total = len(votes)
    if item.split == Split.POOL:
        item.split = HoldoutAssigner(project=item.project).split_for(
            sha256=item.sha256, class_id=label_class.pk
        )
    # The item first: the ground truth's holdout flag is read from the saved item's split.
    item.state = ItemState.LABELED
    item.save(update_fields=["state", "split", "updated_at"])
    truth, _ = GroundTruth.objects.update_or_create(
        item=item,
        defaults={
            "project_id": item.project_id,
            "in_holdout": item.split == Split.HOLDOUT,
            "label_class": label_class,
            "decided_by": Decision.REVIEW,
            "num_annotators": total,
            "agreement": chosen / total if total else None,
            "needs_review": False,
        },
    )
    # The review may settle the last open item of a round.
    rounds_complete({item.pk})
    # The loop decides whether to retrain (once this transaction commits).
    jobs.enqueue(jobs.LABELS_CHANGED, project_id=item.project_id)
    return truth

"""Reads of the labeling app: deep links into Label Studio, an item's annotations and ground
truth, the project's sync state, and how far annotators agree."""

from __future__ import annotations

from collections import Counter, defaultdict

from django.db.models import Count

from loupe.datasets.models import Item, ItemState
from loupe.labeling import adapter
from loupe.labeling.consensus import (
    class_specific_agreement,
    cohen_kappa,
    krippendorff_alpha,
    latest_votes,
    pairwise_agreement,
)
from loupe.labeling.models import (
    Annotation,
    GroundTruth,
    GroundTruthCount,
    LabelStudioSync,
    counted_class,
)
from loupe.labeling.sync import ls_public_url
from loupe.learning.models import SelectionItem, SelectionRound
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes


def ground_truth_counts(project: Project) -> dict[int, dict[str, int]]:
    """{class id: {"train": n, "holdout": n, "needs_review": n}} from the counts the
    database keeps (GroundTruthCount). A tie waiting for review is not a label yet; it is
    counted apart."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = GroundTruthCount.objects.filter(project=project).values_list(
        "label_class_id", "needs_review", "in_holdout", "n"
    )
    for counted, needs_review, in_holdout, n in rows:
        class_id = counted_class(counted)  # None: ground truth without a class (boxes)
        if needs_review:
            counts[class_id]["needs_review"] += n
        else:
            counts[class_id]["holdout" if in_holdout else "train"] += n
    return counts


def label_now_url(*, project: Project) -> str | None:
    """Label Studio's label stream of the project: the next task in push order."""
    if not project.ls_project_id:
        return None
    return adapter.label_stream_url(ls_public_url(), project.ls_project_id)


def project_url(*, project: Project) -> str | None:
    if not project.ls_project_id:
        return None
    return f"{ls_public_url().rstrip('/')}/projects/{project.ls_project_id}/data"


def pick_task_url(project: Project, pick: SelectionItem) -> str | None:
    """The Label Studio task a pick was pushed as, or None before its push."""
    if not (pick.ls_task_id and project.ls_project_id):
        return None
    return adapter.task_url(ls_public_url(), project.ls_project_id, pick.ls_task_id)


def item_labeling(*, item: Item) -> dict:
    """The item's tasks (with deep links), annotations and ground truth."""
    project = item.project
    picks = (
        SelectionItem.objects.filter(item=item)
        .select_related("selection_round")
        .order_by("selection_round__number")
    )
    tasks = [
        {
            "round": pick.selection_round.number,
            "round_id": pick.selection_round_id,
            "reason": pick.reason,
            "is_control": pick.is_control,
            "ls_task_id": pick.ls_task_id,
            "task_url": pick_task_url(project, pick),
        }
        for pick in picks
    ]
    annotations = [
        {
            "ls_annotation_id": a.ls_annotation_id,
            "annotator": a.annotator,
            "label": a.label_class.name if a.label_class else None,
            "was_cancelled": a.was_cancelled,
            "lead_time_seconds": a.lead_time_seconds,
            "updated_at": a.ls_updated_at,
        }
        for a in Annotation.objects.filter(item=item).select_related("label_class")
    ]
    truth = GroundTruth.objects.filter(item=item).select_related("label_class").first()
    return {
        "item_id": item.pk,
        "state": item.state,
        "split": item.split,
        "task_url": next((t["task_url"] for t in reversed(tasks) if t["task_url"]), None),
        "tasks": tasks,
        "annotations": annotations,
        "ground_truth": None
        if truth is None
        else {
            "label": truth.label_class.name,
            "decided_by": truth.decided_by,
            "num_annotators": truth.num_annotators,
            "agreement": truth.agreement,
            "needs_review": truth.needs_review,
        },
    }


def round_labeling(*, selection_round: SelectionRound) -> dict:
    """Push state of a round, its "Label now" link and how far its items got."""
    states = dict(
        Item.objects.filter(selections__selection_round=selection_round)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    picks = SelectionItem.objects.filter(selection_round=selection_round)
    return {
        "id": selection_round.pk,
        "number": selection_round.number,
        "status": selection_round.status,
        "push_error": selection_round.push_error,
        "push_attempts": selection_round.push_attempts,
        "pushed_at": selection_round.pushed_at,
        "tasks": picks.filter(ls_task_id__isnull=False).count(),
        "items": picks.count(),
        "item_states": {state: states.get(state, 0) for state in ItemState.values},
        "label_now_url": label_now_url(project=selection_round.project),
    }


def project_labeling(*, project: Project) -> dict:
    """The project's link with Label Studio: ids, deep links, sync cursor and open work."""
    state = LabelStudioSync.objects.filter(project=project).first()
    return {
        "ls_project_id": project.ls_project_id,
        "label_now_url": label_now_url(project=project),
        "project_url": project_url(project=project),
        "last_synced_at": state.last_synced_at if state else None,
        "last_full_sync_at": state.last_full_sync_at if state else None,
        "last_run_at": state.last_run_at if state else None,
        "last_error": state.last_error if state else "",
        "in_annotation": Item.objects.filter(
            project=project, state=ItemState.IN_ANNOTATION
        ).count(),
        "needs_review": GroundTruth.objects.filter(project=project, needs_review=True).count(),
        "draft_rounds": SelectionRound.objects.filter(
            project=project, status=SelectionRound.Status.DRAFT
        ).count(),
    }


def agreement_stats(*, project: Project) -> dict:
    """Inter-annotator agreement on items that two or more annotators labeled.

    Project: Krippendorff's alpha (nominal; any number of annotators per item) and the
    share of agreeing annotator pairs. Per class: alpha of "this class or not" and the
    class-specific agreement (of pairs where one chose the class, the share where the other
    did too). Per annotator: Cohen's kappa of their labels against the majority of the
    other annotators of the same items (items where the others tie are left out), and
    their raw agreement with it.
    """
    names = {c.pk: c.name for c in project_classes(project=project)}
    # Each annotator's latest answer counts when it names a class: the ground-truth rule.
    votes: dict[int, dict[str, str]] = {
        item_id: {v.annotator: names.get(v.label, str(v.label)) for v in item_votes}
        for item_id, item_votes in latest_votes(Annotation.objects.filter(project=project)).items()
    }
    units = [list(v.values()) for v in votes.values() if len(v) >= 2]
    per_class = []
    for name in names.values():
        binary = [[label == name for label in unit] for unit in units]
        per_class.append(
            {
                "class": name,
                "votes": sum(unit.count(name) for unit in units),
                "alpha": krippendorff_alpha(binary),
                "specific_agreement": class_specific_agreement(units, name),
            }
        )
    per_annotator = []
    annotators = sorted({a for v in votes.values() for a in v})
    for annotator in annotators:
        mine, others_majority = [], []
        for item_votes in votes.values():
            if annotator not in item_votes or len(item_votes) < 2:
                continue
            counts = Counter(label for a, label in item_votes.items() if a != annotator)
            ranked = counts.most_common(2)
            if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
                continue
            mine.append(item_votes[annotator])
            others_majority.append(ranked[0][0])
        per_annotator.append(
            {
                "annotator": annotator,
                "annotations": sum(annotator in v for v in votes.values()),
                "compared_items": len(mine),
                "agreement_with_others": (
                    sum(a == b for a, b in zip(mine, others_majority, strict=True)) / len(mine)
                    if mine
                    else None
                ),
                "kappa": cohen_kappa(mine, others_majority),
            }
        )
    return {
        "items": len(units),
        "annotations": sum(len(u) for u in units),
        "alpha": krippendorff_alpha(units),
        "pairwise_agreement": pairwise_agreement(units),
        "needs_review": GroundTruth.objects.filter(project=project, needs_review=True).count(),
        "classes": per_class,
        "annotators": per_annotator,
    }

"""What earlier batches' picks turned out to be: the record the adaptive strategy learns its
mix from (ml.strategies.adaptive), read from the selection rounds and the ground truth.
A task type that values its picks its own way (`TaskType.pick_values`: a page of boxes has
no single class) gives each pick's value; the others are valued by their class."""

from __future__ import annotations

import numpy as np
from django.db.models import Q

from loupe.labeling.consensus import LABEL_REVIEW
from loupe.labeling.models import GroundTruth
from loupe.learning.models import SelectionItem, SelectionRound
from loupe.projects.models import Project
from loupe.tasktypes import task_type_of
from ml.strategies import PickHistory

# Batches looked back on: an arm's picks count half as much each batch, so older ones
# weigh under 2% together.
ROUNDS_BACK = 6


def pick_history(*, project: Project, number: int, classes) -> PickHistory:
    """The labeled picks of the ``ROUNDS_BACK`` rounds before round ``number``: each pick's
    arm (``"control"`` for the random control slice), ground truth, what the model said when
    it was picked, and how many labels its class had then (recorded with the round; the
    current count for rounds recorded before that), or, for a task type that values picks
    itself, each pick's arm, age and value. Picks without ground truth yet, cold starts and
    label reviews (no model picked them) are left out."""
    index = {c.pk: i for i, c in enumerate(classes)}
    rounds = {
        r.pk: r
        for r in SelectionRound.objects.filter(
            project=project, number__lt=number, number__gte=number - ROUNDS_BACK
        )
        .exclude(model_version=None)
        .exclude(strategy=LABEL_REVIEW)
    }
    if not rounds:
        return PickHistory.empty()
    valued = _valued_history(project=project, number=number, rounds=rounds)
    if valued is not None:
        return valued
    picks = list(
        SelectionItem.objects.filter(selection_round_id__in=rounds)
        .exclude(predicted_class=None)
        .values_list("selection_round_id", "item_id", "strategy", "is_control",
                     "predicted_class_id", "confidence")
    )  # fmt: skip
    truth = dict(
        GroundTruth.objects.filter(
            item_id__in=[p[1] for p in picks], needs_review=False
        ).values_list("item_id", "label_class_id")
    )
    current = np.bincount([index[c] for c in truth.values() if c in index], minlength=len(classes))
    rows = []
    for round_id, item_id, arm, control, predicted, confidence in picks:
        label = index.get(truth.get(item_id))
        if label is None or predicted not in index:
            continue
        selection_round = rounds[round_id]
        counts = (selection_round.mix or {}).get("class_counts") or current.tolist()
        rows.append(
            (
                "control" if control else arm,
                label,
                index[predicted],
                confidence or 0.0,
                counts[label] if label < len(counts) else 0,
                number - 1 - selection_round.number,
            )
        )
    return PickHistory.from_rows(rows)


def _valued_history(*, project: Project, number: int, rounds: dict) -> PickHistory | None:
    """The picks of ``rounds`` with the values their task type gives them (arm, age, value;
    the class fields are placeholders); None for a task type that gives none."""
    task_type = task_type_of(project)
    if not task_type.values_picks:
        return None
    picks = list(
        SelectionItem.objects.filter(selection_round_id__in=rounds).values_list(
            "selection_round_id", "item_id", "strategy", "is_control"
        )
    )
    version_of = {pk: r.model_version_id for pk, r in rounds.items()}
    values = task_type.pick_values(
        picks=[(item_id, version_of[round_id]) for round_id, item_id, _, _ in picks]
    )
    if values is None:
        return None
    rows = []
    for round_id, item_id, arm, control in picks:
        value = values.get((item_id, version_of[round_id]))
        if value is None:
            continue
        age = number - 1 - rounds[round_id].number
        rows.append(("control" if control else arm, 0, 0, 0.0, 0, age, value))
    return PickHistory.from_rows(rows)


def random_picks_labeled(*, project: Project) -> int:
    """How many items picked at random (the control slice, a mix's random arm) have settled
    ground truth, over the project's life: how hard random picks have looked for a class
    nobody has labeled yet."""
    return (
        SelectionItem.objects.filter(
            selection_round__project=project, item__ground_truth__needs_review=False
        )
        .filter(Q(is_control=True) | Q(strategy="random"))
        .values("item_id")
        .distinct()
        .count()
    )

"""Reads for runs, model versions and selection rounds, scoped to the user's projects."""

from django.db.models import QuerySet

from loupe.errors import NotFoundError
from loupe.learning.models import (
    LearningLoop,
    ModelVersion,
    ScoringRun,
    SelectionItem,
    SelectionRound,
    TrainingRun,
)
from loupe.projects.selectors import project_list


def _get(queryset: QuerySet, *, user, pk: int, what: str):
    found = queryset.filter(pk=pk, project__in=project_list(user=user)).first()
    if found is None:
        raise NotFoundError(f"No {what} {pk}.")
    return found


def loop_get(*, user, loop_id: int) -> LearningLoop:
    queryset = LearningLoop.objects.select_related("training_run", "scoring_run", "project")
    return _get(queryset, user=user, pk=loop_id, what="loop")


def training_run_get(*, user, run_id: int) -> TrainingRun:
    queryset = TrainingRun.objects.select_related("project")
    return _get(queryset, user=user, pk=run_id, what="training run")


def scoring_run_get(*, user, run_id: int) -> ScoringRun:
    return _get(ScoringRun.objects.all(), user=user, pk=run_id, what="scoring run")


def model_version_get(*, user, version_id: int) -> ModelVersion:
    return _get(ModelVersion.objects.all(), user=user, pk=version_id, what="model version")


def selection_round_get(*, user, round_id: int) -> SelectionRound:
    return _get(SelectionRound.objects.all(), user=user, pk=round_id, what="selection round")


def selection_round_items(*, selection_round: SelectionRound) -> QuerySet[SelectionItem]:
    return selection_round.items.select_related("item", "predicted_class").order_by("rank")

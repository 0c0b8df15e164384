"""Reads for runs, model versions, predictions and selection rounds, scoped to the user's
projects."""

from collections.abc import Iterator

from django.db.models import Exists, OuterRef, QuerySet

from loupe.errors import ApplicationError, NotFoundError
from loupe.learning.models import (
    LearningLoop,
    ModelVersion,
    Prediction,
    ScoringRun,
    SelectionItem,
    SelectionRound,
    TrainingRun,
)
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes, project_list


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


PREDICTION_ORDERINGS = {
    # ordering parameter -> (Prediction field, descending)
    "-uncertainty": ("uncertainty", True),
    "uncertainty": ("uncertainty", False),
    "-confidence": ("confidence", True),
    "confidence": ("confidence", False),
    "id": ("item_id", False),
}


def prediction_version(*, project: Project, number: int | None = None) -> ModelVersion | None:
    """The model version whose predictions are read: the one numbered `number`, or by default
    the latest version that has predictions (None while no version has scored anything)."""
    versions = ModelVersion.objects.filter(project=project)
    if number is not None:
        version = versions.filter(version=number).first()
        if version is None:
            known = list(versions.order_by("version").values_list("version", flat=True))
            raise ApplicationError(
                f"No model version {number} in this project.", extra={"versions": known}
            )
        return version
    scored = Prediction.objects.filter(model_version=OuterRef("pk"))
    return versions.filter(Exists(scored)).order_by("-version").first()


def prediction_list(
    *, project: Project, model_version: ModelVersion | None, filters: dict | None = None
) -> QuerySet[Prediction]:
    """A version's predictions with the item's state and split, filtered by item state, split
    and predicted class name (a name the project does not have is refused). No version: none."""
    filters = filters or {}
    if filters.get("label"):
        names = [c.name for c in project_classes(project=project)]
        if filters["label"] not in names:
            raise ApplicationError(
                f"The project has no class '{filters['label']}'.", extra={"classes": names}
            )
    if model_version is None:
        return Prediction.objects.none()
    predictions = (
        Prediction.objects.filter(model_version=model_version)
        .select_related("item", "predicted_class")
        .only(*_ROW_FIELDS)
    )
    if filters.get("state"):
        predictions = predictions.filter(item__state=filters["state"])
    if filters.get("split"):
        predictions = predictions.filter(item__split=filters["split"])
    if filters.get("label"):
        predictions = predictions.filter(predicted_class__name=filters["label"])
    return predictions


_ROW_FIELDS = (
    "id",
    "item_id",
    "item__state",
    "item__split",
    "predicted_class__name",
    "confidence",
    "uncertainty",
    "probs",
    "created_at",
)

PREDICTION_ROW_FIELDS = (
    "item_id",
    "file_url",
    "state",
    "split",
    "predicted_class",
    "confidence",
    "uncertainty",
    "probabilities",
    "version",
    "scored_at",
)


def prediction_rows(*, model_version: ModelVersion, chunk_size: int = 2000) -> Iterator[dict]:
    """Every prediction of a version in item order, as plain rows (PREDICTION_ROW_FIELDS),
    read from the database in chunks so an export never holds the whole pool."""
    names = list(model_version.class_names)
    rows = (
        Prediction.objects.filter(model_version=model_version)
        .order_by("item_id")
        .values_list(*_ROW_FIELDS[1:])  # without the prediction's own id
    )
    for item_id, state, split, label, confidence, uncertainty, probs, scored_at in rows.iterator(
        chunk_size=chunk_size
    ):
        yield {
            "item_id": item_id,
            "file_url": item_file_url(item_id=item_id),
            "state": state,
            "split": split,
            "predicted_class": label if label is not None else _top_class(names, probs),
            "confidence": confidence,
            "uncertainty": uncertainty,
            "probabilities": prediction_probabilities(class_names=names, probs=probs),
            "version": model_version.version,
            "scored_at": scored_at,
        }


def item_file_url(*, item_id: int) -> str:
    """The item's image, as the item API links it."""
    return f"/api/v1/items/{item_id}/file/"


def prediction_probabilities(*, class_names: list[str], probs: list[float]) -> dict[str, float]:
    """{class name: probability} in the version's class order."""
    return dict(zip(class_names, probs, strict=False))


def prediction_class_name(*, prediction: Prediction, class_names: list[str]) -> str | None:
    """The predicted class; from the probabilities when the class row has been deleted."""
    if prediction.predicted_class is not None:
        return prediction.predicted_class.name
    return _top_class(class_names, prediction.probs)


def _top_class(class_names: list[str], probs: list[float]) -> str | None:
    if not probs or len(probs) != len(class_names):
        return None
    return class_names[max(range(len(probs)), key=probs.__getitem__)]

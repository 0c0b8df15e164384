"""Projects, rounds and Label Studio bodies for labeling tests (unit and integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings

from loupe.datasets.models import Item, ItemState
from loupe.learning.models import (
    ModelVersion,
    RunStatus,
    SelectionItem,
    SelectionRound,
    TrainingRun,
)
from loupe.projects.services import project_create
from tests.factories import ItemFactory
from tests.images import png_bytes

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    """An ISO time stamp `seconds` after T0, as Label Studio writes it."""
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def labeling_project(*, classes=("cat", "dog"), overlap=1, ls_project_id=None, **settings_):
    project = project_create(
        name=f"Labeling {datetime.now().timestamp()}",
        created_by=None,
        classes=list(classes),
        annotator_overlap=overlap,
        guidelines="Look at the ears.\n\nPointed ears mean cat.",
        **settings_,
    )
    if ls_project_id is not None:
        project.ls_project_id = ls_project_id
        project.save(update_fields=["ls_project_id"])
    return project


def items_with_files(project, n: int, *, seed: int = 0) -> list[Item]:
    """Items whose image files exist under MEDIA_ROOT (where Label Studio serves them)."""
    items = []
    for i in range(n):
        item = ItemFactory(project=project)
        path = Path(settings.MEDIA_ROOT) / item.file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(seed + i))
        items.append(item)
    return items


def model_version(project, version: int = 1) -> ModelVersion:
    run = TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED)
    names = [c.name for c in project.classes.order_by("order")]
    return ModelVersion.objects.create(
        project=project,
        training_run=run,
        version=version,
        weights=f"models/{project.slug}-v{version}.pt",
        image_size=32,
        class_names=names,
    )


def selection_round(project, items, *, version: ModelVersion | None = None, number=None):
    """A draft round picking `items` in the given order (rank 1 first), as selection does."""
    number = number or (SelectionRound.objects.filter(project=project).count() + 1)
    selection_round = SelectionRound.objects.create(
        project=project,
        number=number,
        model_version=version,
        strategy="margin" if version else "cold_start",
        batch_size=len(items),
    )
    classes = list(project.classes.order_by("order"))
    for rank, item in enumerate(items, start=1):
        SelectionItem.objects.create(
            selection_round=selection_round,
            item=item,
            rank=rank,
            score=1.0 / rank,
            strategy=selection_round.strategy,
            is_control=rank == len(items) and len(items) > 2,
            predicted_class=classes[rank % len(classes)] if version else None,
            confidence=0.5 + 0.01 * rank if version else None,
            reason=f"margin score {1.0 / rank:.3f}",
        )
    Item.objects.filter(pk__in=[i.pk for i in items]).update(state=ItemState.QUEUED)
    return selection_round


def annotation_body(
    annotation_id,
    *,
    task_id,
    item_id,
    choice="cat",
    updated=0.0,
    user=1,
    cancelled=False,
    round_id=1,
    result=None,
):
    """One annotation object as Label Studio's webhook carries it, with its task; `result`
    replaces the one choice (`choice`) with another result (a detection's rectangles)."""
    if result is None:
        result = (
            []
            if cancelled or choice is None
            else [
                {
                    "from_name": "label",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [choice]},
                }
            ]
        )
    annotation = {
        "id": annotation_id,
        "task": task_id,
        "project": 7,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": False,
        "completed_by": user,
        "lead_time": 3.5,
        "created_at": at(0),
        "updated_at": at(updated),
    }
    task = {
        "id": task_id,
        "data": {"image": "x", "loupe_item_id": item_id, "loupe_round_id": round_id},
    }
    return annotation, task


def webhook(action, ls_project_id, **fields):
    """A webhook body; `project` is the full project object in real bodies."""
    return {"action": action, "project": {"id": ls_project_id, "title": "t"}, **fields}

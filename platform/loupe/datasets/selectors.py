"""Reads for items and imports."""

import json
import logging

from django.core.files.storage import default_storage
from django.db.models import QuerySet

from loupe.datasets.models import ImportJob, ImportRejection, Item
from loupe.errors import NotFoundError
from loupe.projects.models import Project
from loupe.projects.selectors import project_list

logger = logging.getLogger(__name__)


def item_list(*, project: Project, filters: dict | None = None) -> QuerySet[Item]:
    """Items of a project, filtered by state, split, source and ground-truth class name (for
    detection pages, a class of their true boxes)."""
    filters = filters or {}
    items = Item.objects.filter(project=project).select_related("ground_truth__label_class")
    if filters.get("state"):
        items = items.filter(state=filters["state"])
    if filters.get("split"):
        items = items.filter(split=filters["split"])
    if filters.get("source"):
        items = items.filter(source=filters["source"])
    if filters.get("label") and project.task_type == "object_detection":
        # A page has no one class: the pages with a true box of the class. The answer is
        # matched as JSON text ("label": "<name>"), the same on every database.
        needle = json.dumps({"label": filters["label"]})[1:-1]
        items = items.filter(ground_truth__answer__icontains=needle)
    elif filters.get("label"):
        items = items.filter(ground_truth__label_class__name=filters["label"])
    return items


def item_get(*, user, item_id: int) -> Item:
    item = (
        Item.objects.filter(pk=item_id, project__in=project_list(user=user))
        .select_related("project", "ground_truth__label_class")
        .first()
    )
    if item is None:
        raise NotFoundError(f"No item {item_id}.")
    return item


def item_file_open(*, item: Item, image: int = 0):
    """The item's stored image, opened for reading: `image` 0 is its file, 1 and on its
    further images (1: the right image of a pair). An image the item has not is a 404 that
    says how many it has. A file gone from media storage (a volume not mounted, a folder
    cleaned by hand) is a 404 that says so, and is logged: the item row is kept, so nothing
    of its labels is lost."""
    names = [item.file.name, *(item.extra_files or ())]
    if not 0 <= image < len(names):
        raise NotFoundError(
            f"Item {item.pk} has {len(names)} image{'s' if len(names) != 1 else ''} (0 to"
            f" {len(names) - 1}); there is no image {image}.",
            extra={"item": item.pk, "images": len(names)},
        )
    try:
        if image == 0:
            return item.file.open("rb")
        return default_storage.open(names[image], "rb")
    except (FileNotFoundError, OSError) as exc:
        raise _missing(item, exc) from None


def _missing(item: Item, exc: Exception) -> NotFoundError:
    logger.error("image of item %s missing from media storage: %s", item.pk, exc)
    return NotFoundError(
        f"The image of item {item.pk} is missing from media storage; its labels are kept."
        " Restore the media folder (or re-import the file) to see it again.",
        extra={"item": item.pk},
    )


def import_job_list(*, project: Project) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(project=project)


def import_job_get(*, user, import_job_id: int) -> ImportJob:
    job = (
        ImportJob.objects.filter(pk=import_job_id, project__in=project_list(user=user))
        .select_related("project")
        .first()
    )
    if job is None:
        raise NotFoundError(f"No import {import_job_id}.")
    return job


def import_rejections(*, job: ImportJob, limit: int = 1000) -> list[ImportRejection]:
    return list(job.rejections.all()[:limit])


def item_sources(*, project: Project) -> list[str]:
    # order_by() on the source alone: the model's default ordering by id would make every
    # item's source distinct.
    items = Item.objects.filter(project=project)
    return list(items.order_by("source").values_list("source", flat=True).distinct())

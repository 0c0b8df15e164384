"""Reads for items and imports."""

from django.db.models import QuerySet

from loupe.datasets.models import ImportJob, ImportRejection, Item
from loupe.errors import NotFoundError
from loupe.projects.models import Project
from loupe.projects.selectors import project_list


def item_list(*, project: Project, filters: dict | None = None) -> QuerySet[Item]:
    """Items of a project, filtered by state, split, source and ground-truth class name."""
    filters = filters or {}
    items = Item.objects.filter(project=project).select_related("ground_truth__label_class")
    if filters.get("state"):
        items = items.filter(state=filters["state"])
    if filters.get("split"):
        items = items.filter(split=filters["split"])
    if filters.get("source"):
        items = items.filter(source=filters["source"])
    if filters.get("label"):
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

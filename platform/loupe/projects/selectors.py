"""Reads for projects."""

from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet

from loupe.errors import ApplicationError, NotFoundError
from loupe.projects.models import LabelClass, Project


def project_list(*, user: AbstractUser) -> QuerySet[Project]:
    """Projects the user may see: all for superusers, their memberships otherwise."""
    projects = Project.objects.all()
    if not user.is_superuser:
        projects = projects.filter(memberships__user=user)
    return projects.order_by("name")


def project_get(*, user: AbstractUser, slug: str) -> Project:
    """The project, if the user may see it. A project they may not see is reported as
    missing, so its existence does not leak."""
    project = project_list(user=user).filter(slug=slug).first()
    if project is None:
        raise NotFoundError(f"No project '{slug}'.")
    return project


def project_classes(*, project: Project) -> list[LabelClass]:
    return list(LabelClass.objects.filter(project=project).order_by("order", "id"))


def strategy_name(project: Project) -> str:
    """The acquisition strategy the project selects with (the default one for "" or
    "default"); read by scoring (which inputs to compute) and selection alike."""
    from ml.strategies import available, default_strategy

    default = default_strategy(project.task_type)
    name = default if project.strategy in ("", "default") else project.strategy
    if name not in available():
        raise ApplicationError(f"Unknown strategy '{name}'.", extra={"available": available()})
    return name

"""Writes for projects: creation, settings and the ordered class list."""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils.text import slugify

from loupe.accounts.models import Role
from loupe.accounts.services import membership_set
from loupe.errors import ApplicationError
from loupe.projects.models import LabelClass, Project
from loupe.tasktypes import get_task_type

EDITABLE_FIELDS = {
    "name",
    "description",
    "guidelines",
    "strategy",
    "batch_size",
    "control_fraction",
    "retrain_every_n_labels",
    "retrain_every_minutes",
    "train_epochs",
    "class_weighting",
    "loss",
    "image_size",
    "annotator_overlap",
    "holdout_fraction",
    "augmentations",
}


@transaction.atomic
def project_create(
    *,
    name: str,
    created_by: AbstractUser | None,
    slug: str = "",
    task_type: str = "image_classification",
    classes: Sequence[dict[str, Any] | str] = (),
    **settings: Any,
) -> Project:
    """Creates a project with its ordered classes; the creator becomes its admin."""
    kind = get_task_type(task_type)  # refuses a task type without an adapter
    classes = classes or kind.fixed_classes
    slug = slug or slugify(name)[:80]
    if not slug:
        raise ApplicationError("A project needs a name made of letters or digits.")
    if Project.objects.filter(slug=slug).exists():
        raise ApplicationError(f"A project with slug '{slug}' already exists.", code="conflict")
    unknown = set(settings) - EDITABLE_FIELDS
    if unknown:
        raise ApplicationError(f"Unknown project settings: {', '.join(sorted(unknown))}.")
    project = Project(name=name, slug=slug, task_type=task_type, created_by=created_by, **settings)
    _validate_settings(project)
    project.save()
    if classes:
        label_classes_set(project=project, classes=classes)
    if created_by is not None and not created_by.is_superuser:
        membership_set(project=project, user=created_by, role=Role.ADMIN)
    return project


@transaction.atomic
def project_update(*, project: Project, **changes: Any) -> Project:
    """Changes the project's name, guidelines or active-learning settings."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ApplicationError(f"These settings cannot be changed: {', '.join(sorted(unknown))}.")
    for field, value in changes.items():
        setattr(project, field, value)
    _validate_settings(project)
    project.save()
    _label_studio_changed(project)
    return project


def _validate_settings(project: Project) -> None:
    """Refuses settings that cannot work, saying which and why."""
    from ml.strategies import available

    serving = available(project.task_type)
    if project.strategy not in ("", "default", *serving):
        known = project.strategy in available()
        raise ApplicationError(
            f"Strategy '{project.strategy}' cannot choose items of a {project.task_type} project."
            if known
            else f"Unknown strategy '{project.strategy}'.",
            extra={"field": "strategy", "available": ["default", *serving]},
        )
    if not 0.0 <= project.control_fraction < 1.0:
        raise ApplicationError("control_fraction must be in [0, 1).")
    _validate_augmentations(project)
    if not 0.0 <= project.holdout_fraction <= 0.5:
        raise ApplicationError(
            "holdout_fraction must be in [0, 0.5]: beyond half, the holdout takes more labels"
            " than training gets."
        )
    if project.train_epochs < 1:
        raise ApplicationError("train_epochs must be at least 1.")
    if project.batch_size < 1:
        raise ApplicationError("batch_size must be at least 1.")
    if not 16 <= project.image_size <= 1024:
        raise ApplicationError("image_size must be between 16 and 1024 pixels.")
    if project.annotator_overlap < 1:
        raise ApplicationError("annotator_overlap must be at least 1.")


@transaction.atomic
def label_classes_set(
    *, project: Project, classes: Sequence[dict[str, Any] | str]
) -> list[LabelClass]:
    """Sets the ordered class list. Existing classes keep their identity (and their labels);
    new ones are added; a class that has labels cannot be removed."""
    wanted = [{"name": c} if isinstance(c, str) else dict(c) for c in classes]
    names = [c.get("name", "").strip() for c in wanted]
    if any(not n for n in names):
        raise ApplicationError("Every class needs a name.")
    if len(set(names)) != len(names):
        raise ApplicationError("Class names must be unique.", extra={"classes": names})
    fixed = get_task_type(project.task_type).fixed_classes
    if fixed and sorted(names) != sorted(fixed):
        raise ApplicationError(
            f"A {project.task_type} project has the classes {', '.join(fixed)}, no others.",
            extra={"classes": list(fixed)},
        )
    if fixed:  # the model's outputs come in this order
        wanted.sort(key=lambda c: fixed.index(c["name"].strip()))
    existing = {c.name: c for c in LabelClass.objects.filter(project=project)}
    removed = [c for name, c in existing.items() if name not in names]
    for label_class in removed:
        if (
            label_class.ground_truths.exists()
            or label_class.annotations.exists()
            or get_task_type(project.task_type).class_in_use(project=project, name=label_class.name)
        ):
            raise ApplicationError(
                f"Class '{label_class.name}' has labels and cannot be removed.",
                code="conflict",
            )
        label_class.delete()
    result = []
    for order, spec in enumerate(wanted):
        name = spec["name"].strip()
        target = spec.get("target_count")
        if target is not None and int(target) < 0:
            raise ApplicationError(f"Target for '{name}' must not be negative.")
        label_class = existing.get(name) or LabelClass(project=project, name=name)
        label_class.order = order
        label_class.target_count = target
        label_class.description = spec.get("description", label_class.description or "")
        label_class.save()
        result.append(label_class)
    _label_studio_changed(project)
    return result


# Augmentation settings that are probabilities (the others are sizes: pixels or factors).
_PROBABILITIES = ("ink", "blur", "hflip", "vflip", "quarter_turns")
# Augmentation settings that are factors of 1 ± value.
_FACTORS = ("scale", "contrast")


def _validate_augmentations(project: Project) -> None:
    """Refuses augmentation changes that name no augmentation of the project's task type
    or cannot work."""
    from dataclasses import fields

    from loupe.tasktypes import task_type_of

    augmentations = project.augmentations
    if not isinstance(augmentations, dict):
        raise ApplicationError("augmentations must be an object of setting: value.")
    augmentation = task_type_of(project).augmentation()
    if augmentation is None:
        if augmentations:
            raise ApplicationError(
                f"A {project.task_type} project takes no augmentations setting.",
                extra={"field": "augmentations"},
            )
        return
    known = {f.name: f.type for f in fields(augmentation) if f.name != "seed"}
    for name, value in augmentations.items():
        if name not in known:
            raise ApplicationError(
                f"Unknown augmentation '{name}'.",
                extra={"field": "augmentations", "known": sorted(known)},
            )
        if name == "dark_ink":
            if not isinstance(value, bool):
                raise ApplicationError("augmentations.dark_ink must be true or false.")
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ApplicationError(f"augmentations.{name} must be a number of at least 0.")
        if name in _PROBABILITIES and value > 1:
            raise ApplicationError(f"augmentations.{name} is a probability: at most 1.")
        if name in _FACTORS and value >= 0.5:
            raise ApplicationError(
                f"augmentations.{name} must stay under 0.5 (a factor of 1 ± {name})."
            )


def _label_studio_changed(project: Project) -> None:
    # A project linked to Label Studio re-syncs its labeling config in a worker.
    from loupe.labeling.services import project_changed

    project_changed(project=project)

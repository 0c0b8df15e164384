"""Task types as plug-ins, on the platform side: one adapter per kind of work
(`loupe.tasktypes.base.TaskType`), under the same key as its learning spec in `ml.tasks`.

Callers ask by project: `task_type_of(project).label_config(...)`. A project may only be
created with a registered task type (`SUPPORTED_TASK_TYPES`, the registry's keys).
"""

from __future__ import annotations

from loupe.errors import ApplicationError
from loupe.tasktypes.base import Outcome, TaskType, TrainingRow, Vote, plurality
from loupe.tasktypes.classification import ImageClassification
from loupe.tasktypes.object_detection import ObjectDetection
from loupe.tasktypes.pair_verification import PairVerification

__all__ = [
    "SUPPORTED_TASK_TYPES",
    "TASK_TYPES",
    "Outcome",
    "TaskType",
    "TrainingRow",
    "Vote",
    "get_task_type",
    "plurality",
    "register",
    "task_type_of",
    "unregister",
]

TASK_TYPES: dict[str, TaskType] = {}
# A live view: a task type registered later is supported from then on.
SUPPORTED_TASK_TYPES = TASK_TYPES.keys()


def register(task_type: TaskType) -> TaskType:
    """Adds a task type under its name, which must be a task type of `ml.tasks` too (the
    learning side it trains with); ValueError otherwise, or when the name is taken."""
    from ml.tasks import TASK_TYPES as ML_TASK_TYPES

    if task_type.name not in ML_TASK_TYPES:
        raise ValueError(
            f"task type {task_type.name!r} has no learning spec in ml.tasks; register one first"
        )
    current = TASK_TYPES.get(task_type.name)
    if current is not None and current is not task_type:
        raise ValueError(f"task type {task_type.name!r} is registered already")
    TASK_TYPES[task_type.name] = task_type
    return task_type


def unregister(name: str) -> None:
    """Removes a task type (a test's toy one); nothing when it is not there."""
    TASK_TYPES.pop(name, None)


def get_task_type(name: str) -> TaskType:
    """The adapter of a task type; ApplicationError naming the supported ones otherwise."""
    try:
        return TASK_TYPES[name]
    except KeyError:
        raise ApplicationError(
            f"Task type '{name}' is not supported yet.",
            extra={"supported": sorted(TASK_TYPES)},
        ) from None


def task_type_of(project) -> TaskType:
    """The adapter of the project's task type."""
    return get_task_type(project.task_type)


register(ImageClassification())
register(PairVerification())
register(ObjectDetection())

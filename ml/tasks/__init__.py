"""Task types as plug-ins: one :class:`~ml.tasks.base.TaskSpec` per kind of work.

::

    spec = get_task("image_classification")
    model = spec.build_model("small_cnn", num_classes=3, image_size=64, seed=0)
    result = spec.train(model, x, y, config=TrainConfig(num_classes=3))
    predictions = spec.predict(result.model, x_pool, mc_samples=8)
    spec.evaluate(y_holdout, spec.predict(result.model, x_holdout), class_names=names).value

A new task type adds one module with its spec and registers it (:func:`register`); the
platform's task-type adapters use the same keys.
"""

from __future__ import annotations

from ml.tasks.base import Evaluation, Predictions, TaskSpec
from ml.tasks.classification import ClassificationSpec
from ml.tasks.object_detection import ObjectDetectionSpec
from ml.tasks.pair_verification import PairVerificationSpec

__all__ = [
    "TASK_TYPES",
    "ClassificationSpec",
    "PairVerificationSpec",
    "Evaluation",
    "Predictions",
    "TaskSpec",
    "get_task",
    "register",
    "unregister",
]

TASK_TYPES: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Adds a task type under ``spec.name``; ValueError when the name is empty or taken by
    another spec. Returns the spec."""
    if not spec.name:
        raise ValueError("a task spec needs a name")
    current = TASK_TYPES.get(spec.name)
    if current is not None and current is not spec:
        raise ValueError(f"task type {spec.name!r} is registered already")
    TASK_TYPES[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Removes a task type (a test's toy one); nothing when it is not there."""
    TASK_TYPES.pop(name, None)


def get_task(name: str) -> TaskSpec:
    """The spec of a task type by name; ValueError naming the known ones otherwise."""
    try:
        return TASK_TYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown task type {name!r}; known: {', '.join(sorted(TASK_TYPES))}"
        ) from None


register(ClassificationSpec())
register(PairVerificationSpec())
register(ObjectDetectionSpec())

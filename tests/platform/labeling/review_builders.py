"""A labeled project whose model doubts one label flipped on purpose (unit and integration
tests of the label-error review)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from loupe.datasets.models import Item, ItemState, Split
from loupe.datasets.services import import_job_create, import_job_run
from loupe.datasets.storage import file_replace
from loupe.labeling.models import Annotation, Decision, GroundTruth
from loupe.learning.models import ModelVersion, Prediction
from loupe.projects.models import LabelClass, Project
from loupe.projects.services import project_create
from tests.factories import ItemFactory
from tests.platform.labeling.builders import items_with_files, labeling_project, model_version

CLASSES = ("good", "scratch", "dent")


@dataclass
class SuspectWorld:
    project: Project
    version: ModelVersion
    items: list[Item]
    flipped: Item  # truly a scratch, labeled dent by two of three annotators
    in_sample_flip: Item | None  # truly good, imported as scratch, and trained on


def _probs(true: int, i: int, k: int = 3) -> list[float]:
    p = np.full(k, 0.0)
    p[true] = 0.84 + 0.01 * (i % 5)
    p[(true + 1) % k] = (1 - p[true]) * 0.6
    p[(true + 2) % k] = 1 - p[true] - p[(true + 1) % k]
    return [round(float(x), 5) for x in p]


def suspect_world(
    *, n: int = 24, files: bool = False, trained_on: int = 0, ls_project_id=None
) -> SuspectWorld:
    """`n` labeled items, a third of each class, one in four in the holdout, all imported
    except the flipped one (a majority of annotators' votes). The version scored every item
    (stored predictions) and is confident in each one's true class. With `trained_on`, the
    first items (the flipped one apart) are the ones the version trained on, and the fourth
    of them is imported with a wrong label too."""
    project = labeling_project(classes=CLASSES, ls_project_id=ls_project_id)
    version = model_version(project)  # made before the labels, so every label is new to it
    classes = {c.name: c for c in LabelClass.objects.filter(project=project)}
    items = items_with_files(project, n) if files else ItemFactory.create_batch(n, project=project)
    flipped = items[7]  # 7 % 3 == 1: a scratch, not in the holdout
    in_sample_flip = items[3] if trained_on > 3 else None  # 3 % 3 == 0: a good part
    for i, item in enumerate(items):
        true = i % 3
        item.split = Split.HOLDOUT if i % 4 == 0 and i >= trained_on else Split.TRAIN
        item.state = ItemState.LABELED
        item.save(update_fields=["split", "state"])
        given = CLASSES[true]
        probs = _probs(true, i)
        if item == flipped:
            given, probs = "dent", [0.02, 0.95, 0.03]
            for offset, (who, choice) in enumerate(
                (("alice", "dent"), ("bob", "dent"), ("carol", "scratch"))
            ):
                Annotation.objects.create(
                    item=item,
                    project=project,
                    label_class=classes[choice],
                    annotator=who,
                    ls_annotation_id=9000 + offset,
                    ls_task_id=8000,
                )
            decided = {"decided_by": Decision.MAJORITY, "num_annotators": 3, "agreement": 2 / 3}
        else:
            if item == in_sample_flip:
                given, probs = "scratch", [0.9, 0.07, 0.03]
            decided = {"decided_by": Decision.IMPORTED, "num_annotators": 0, "agreement": 1.0}
        GroundTruth.objects.create(item=item, label_class=classes[given], **decided)
        best = int(np.argmax(probs))
        Prediction.objects.create(
            item=item,
            model_version=version,
            predicted_class=classes[CLASSES[best]],
            confidence=probs[best],
            uncertainty=0.1,
            probs=probs,
        )
    if trained_on:
        buffer = io.BytesIO()
        trained = [item.pk for item in items[:trained_on] if item != flipped]
        ids = np.array(trained, dtype=np.int64)
        np.savez(buffer, item_ids=ids, embeddings=np.zeros((len(ids), 4), dtype=np.float32))
        name = f"models/{project.slug}-v1-train.npz"
        file_replace(name=name, content=buffer.getvalue())
        ModelVersion.objects.filter(pk=version.pk).update(train_embeddings=name)
        version.refresh_from_db()
    return SuspectWorld(project, version, items, flipped, in_sample_flip)


def inspection_line(import_root, *, epochs: int = 25):
    """An inspection project with 160 imported labels (30% in the holdout) and a pool of 80,
    trained long enough (`epochs` at the first training) that its model is sure of items:
    a model near chance doubts no label strongly enough to list it."""
    from ml.synthetic import make_inspection_dataset

    make_inspection_dataset(
        import_root / "line",
        n_images=240,
        image_size=32,
        seed=3,
        class_counts={"good": 90, "scratch": 50, "dent": 50, "stain": 50},
    )
    project = project_create(
        name="Line",
        created_by=None,
        classes=["good", "scratch", "dent", "stain"],
        image_size=32,
        batch_size=12,
        train_epochs=epochs,
        control_fraction=0.25,
    )
    rows = (import_root / "line" / "manifest.csv").read_text().splitlines()[1:]
    labeled, pool = ["path,label"], ["path"]
    for i, row in enumerate(rows):
        path, label = row.split(",")[:2]
        (labeled if i % 3 else pool).append(f"line/{path},{label}" if i % 3 else f"line/{path}")
    for name, lines, holdout in (("labeled.csv", labeled, 0.3), ("pool.csv", pool, 0.0)):
        (import_root / name).write_text("\n".join(lines) + "\n")
        job = import_job_create(
            project=project, path=str(import_root / name), enqueue=False, holdout_fraction=holdout
        )
        assert import_job_run(import_job_id=job.pk).rejected == 0
    return project

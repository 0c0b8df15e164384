"""Single-label image classification: one image per task, one class per answer.

The Label Studio side is `labeling.ls_payloads` (a Choices config, a `choices` result as
pre-annotation and answer); ground truth is the plurality of the annotators' classes;
training reads each labeled item's class; scoring writes one Prediction row per item with
its predicted class, confidence and uncertainty, which the pages filter and sort on; exports
give one row per labeled item with its class, and per prediction with its probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.utils import timezone

from loupe.bulk import db_value, insert_rows
from loupe.datasets.models import Item, Split
from loupe.labeling import ls_payloads
from loupe.labeling.models import GroundTruth
from loupe.learning.models import Prediction
from loupe.learning.selectors import PREDICTION_ROW_FIELDS, prediction_rows
from loupe.projects.selectors import project_classes
from loupe.tasktypes.base import TaskType, TrainingRow

# Fewer holdout items than this fit no temperature (T = 1): ml.calibration's minimum.
CALIBRATION_MIN_HOLDOUT = 50


class ImageClassification(TaskType):
    name = "image_classification"
    title = "Image classification (single label)"

    def augmentation(self):
        from ml.augment import Augment

        return Augment

    def augmentation_sentence(self, augment):
        words = "used as it is" if augment is None else augment.describe()
        return (
            f"Each training image is {words}; never rescaled. The project's augmentations"
            " setting turns on flips, turns, shifts and light changes."
        )

    def train_options(self, *, config):
        """The training augmentations: none by default; the project's changes
        (`Project.augmentations`, recorded in the run's config) turn on flips, turns,
        shifts or light changes of `ml.augment.Augment` (never a rescale)."""
        from ml.augment import from_changes

        return {"augment": from_changes(config.get("augmentations", {}))}

    def label_config(self, *, classes, guidelines, image_px):
        return ls_payloads.labeling_config(self.name, classes, guidelines, image_px=image_px)

    def task_data(self, *, file, extra_files=()):
        return {ls_payloads.IMAGE_FIELD: ls_payloads.local_file_url(file)}

    def pre_annotation(self, *, predicted_class, confidence):
        if predicted_class is None:
            return None
        return ls_payloads.PushPrediction(
            result=ls_payloads.choices_result([predicted_class]),
            score=float(confidence or 0.0),
            model_version=ls_payloads.PREDICTION_MODEL_VERSION,
        )

    def read_answer(self, result):
        return ls_payloads.chosen_classes(result)

    def training_rows(self, *, project, holdout):
        """The holdout is the project's fixed one (`labeling.holdout`); every other label
        trains, including the ones experts just gave. A tie waiting for review is not a
        label yet."""
        items = Item.objects.filter(
            project=project, ground_truth__isnull=False, ground_truth__needs_review=False
        )
        items = items.filter(split=Split.HOLDOUT) if holdout else items.exclude(split=Split.HOLDOUT)
        rows = items.order_by("id").values_list(
            "id", "file", "ground_truth__label_class_id", "sha256"
        )
        return [TrainingRow(*row) for row in rows]

    def training_targets(self, rows: Sequence[TrainingRow], *, classes) -> np.ndarray:
        """Class indices in the project's class order."""
        index = {c.pk: i for i, c in enumerate(classes)}
        return np.array([index[r.label_class_id] for r in rows], dtype=np.int64)

    def holdout_report(self, *, model, x_train, y_train, x_holdout, y_holdout, names):
        """The model's holdout metrics with their intervals and calibration, and the simple
        baselines beside them: a class-weighted linear probe on 8x8 pixel thumbnails and
        the majority class."""
        from ml.baseline import fit_linear_probe

        probs = self.ml_spec().predict(model, x_holdout).probs
        metrics = holdout_metrics(y_holdout, probs, names)
        metrics["calibration"] = holdout_calibration(y_holdout, probs)
        probe = fit_linear_probe(_thumbs(x_train), y_train, num_classes=len(names), seed=0)
        baseline = holdout_metrics(y_holdout, probe.predict_proba(_thumbs(x_holdout)), names)
        baseline["name"] = "linear probe on 8x8 thumbnails"
        baseline["majority_class"] = majority_baseline(y_train, y_holdout, names)
        return metrics, baseline

    def predictions_insert(self, *, version, run, item_ids, probs, scored=None):
        """The chunk's Prediction rows, as bulk_create(ignore_conflicts=True) writes them,
        from plain tuples (loupe.bulk): predicted class, confidence (top probability),
        uncertainty (1 - margin between the top two) and the probabilities kept to 5
        decimals."""
        ordered = np.sort(probs, axis=1)
        confidence = ordered[:, -1]
        uncertainty = 1.0 - (confidence - (ordered[:, -2] if probs.shape[1] > 1 else 0.0))
        classes = {c.name: c.pk for c in project_classes(project=run.project)}
        by_index = [classes.get(name) for name in version.class_names]
        class_ids = [by_index[i] for i in probs.argmax(axis=1).tolist()]
        created_at = db_value(Prediction, "created_at", timezone.now())
        rows = [
            (
                item,
                version.pk,
                run.pk,
                label,
                conf,
                unc,
                db_value(Prediction, "probs", p),
                created_at,
            )
            for item, label, conf, unc, p in zip(
                item_ids.tolist(),
                class_ids,
                confidence.tolist(),
                uncertainty.tolist(),
                np.round(probs.astype(np.float64), 5).tolist(),
                strict=True,
            )
        ]
        insert_rows(Prediction, _PREDICTION_COLUMNS, rows, ignore_conflicts=True)

    ground_truth_fields = (
        "item_id",
        "file",
        "original_name",
        "sha256",
        "label",
        "split",
        "source",
        "decided_by",
        "num_annotators",
        "agreement",
        "width",
        "height",
    )
    prediction_fields = PREDICTION_ROW_FIELDS

    def ground_truth_rows(self, *, project, split=None):
        """Usable ground truth (ties waiting for review left out), item by item, read from
        the database in chunks."""
        truths = GroundTruth.objects.filter(project=project, needs_review=False)
        if split:
            truths = truths.filter(item__split=split)
        rows = truths.order_by("item_id").values_list(
            "item_id",
            "item__file",
            "item__original_name",
            "item__sha256",
            "label_class__name",
            "item__split",
            "item__source",
            "decided_by",
            "num_annotators",
            "agreement",
            "item__width",
            "item__height",
        )
        for row in rows.iterator(chunk_size=_EXPORT_CHUNK):
            yield dict(zip(self.ground_truth_fields, row, strict=True))

    def prediction_rows(self, *, model_version):
        return prediction_rows(model_version=model_version)


_EXPORT_CHUNK = 2000
_PREDICTION_COLUMNS = (
    "item",
    "model_version",
    "scoring_run",
    "predicted_class",
    "confidence",
    "uncertainty",
    "probs",
    "created_at",
)


def holdout_metrics(y_holdout: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    """The holdout figures with what they stand on: per-class support (in `per_class`) and
    95% stratified-bootstrap intervals, so a figure on a handful of items reads as such.
    Deterministic: the same holdout and predictions give the same intervals."""
    from ml.metrics import bootstrap_intervals
    from ml.tasks import Predictions, get_task

    spec = get_task(ImageClassification.name)
    metrics = spec.evaluate(y_holdout, Predictions(probs=probs), class_names=names).details
    metrics["intervals"] = bootstrap_intervals(
        y_holdout,
        probs.argmax(axis=1),
        len(names),
        n_resamples=settings.LOUPE_BOOTSTRAP_SAMPLES,
        seed=0,
    )
    metrics["interval_level"] = 0.95
    metrics["holdout"] = "fixed project holdout"
    return metrics


def holdout_calibration(y_holdout: np.ndarray, probs: np.ndarray) -> dict:
    """Reliability bins and ECE on the holdout before and after temperature scaling, and the
    temperature that scoring divides this version's logits by (1 on a holdout too small to
    fit one; `note` says so). See ml.calibration.calibration_report."""
    from ml.calibration import calibration_report

    return calibration_report(y_holdout, probs, min_size=CALIBRATION_MIN_HOLDOUT)


def majority_baseline(y_train: np.ndarray, y_holdout: np.ndarray, names: list[str]) -> dict:
    """Doing nothing clever: always answer the most frequent training class, scored on the
    holdout like the model. Its balanced accuracy is 1/k for the k classes the holdout
    holds (0 when the holdout lacks that class)."""
    from ml.metrics import classification_metrics

    majority = int(np.bincount(y_train, minlength=len(names)).argmax())
    constant = np.zeros((len(y_holdout), len(names)))
    constant[:, majority] = 1.0
    metrics = classification_metrics(y_holdout, constant, class_names=names)
    return {
        "name": f"always answering {names[majority]}, the majority class",
        "class": names[majority],
        **{key: metrics[key] for key in ("n", "accuracy", "balanced_accuracy", "macro_f1")},
    }


def _thumbs(x) -> np.ndarray:
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(x, 8).flatten(1).numpy()

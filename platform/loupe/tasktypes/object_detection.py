"""Object detection: boxes of several classes on one image (a page). One item is a page.

The Label Studio side is a RectangleLabels config (`ls_payloads.labeling_config`); a pushed
page carries the model's boxes as pre-annotation, one rectangle per box with its score, the
task's score being the page's uncertainty. An answer is the list of boxes an expert drew
(`Annotation.answer`); several answers on a page become ground truth by matching boxes
(IoU, `ml.box_consensus`), with an agreement figure per page and class, and needs-review
when the annotators disagree. Ground truth has no class (`GroundTruth.label_class` is None):
its `answer` holds the boxes, ``{"boxes": [{"x", "y", "w", "h", "label"}, ...]}`` in pixels
of the page, top-left corner and size.

Where pages come from (`DetectionImport`), from a folder or a zip archive:
- COCO: an `annotations.json` (instances) at the top, naming the pages by `file_name`
  relative to it; pages with boxes are imported as labeled, the others join the pool;
- YOLO: `images/` and `labels/` (one `.txt` per page) with a names file (`data.yaml`,
  `classes.txt`...);
- neither: every image is a pool page.
Bad boxes (outside the image, zero area, unknown class) are rejected one by one with their
reason; the rest of the page is kept. A project without classes takes the file's.

Training reads whole pages at their own size (crop, don't rescale: the detector trains on
tiles and scores pages tile by tile, `ml.tasks.object_detection`); scoring writes one
Prediction per page with its boxes; the holdout report is mAP@0.5 with a bootstrap interval
over pages, COCO mAP, AP of small objects, per-class AP with its support and the
confusions; exports are COCO json and a YOLO zip of the ground truth, streamed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from loupe.bulk import db_value, insert_rows
from loupe.datasets import sources
from loupe.datasets.models import (
    ITEM_IMPORT_COLUMNS,
    ImportKind,
    Item,
    ItemState,
    Split,
)
from loupe.errors import ApplicationError
from loupe.labeling import ls_payloads
from loupe.labeling.holdout import HoldoutAssigner
from loupe.labeling.models import Decision, GroundTruth
from loupe.learning.models import ModelVersion, Prediction
from loupe.learning.selectors import PREDICTION_ROW_FIELDS, prediction_rows
from loupe.projects.models import LabelClass, Project
from loupe.runs import run_beat
from loupe.tasktypes.base import (
    Outcome,
    TaskType,
    TaskTypeImport,
    TrainingRow,
    Vote,
    imported_ground_truth_create,
    summary_figure,
    summary_interval,
)

logger = logging.getLogger(__name__)

OBJECT_DETECTION = "object_detection"
COCO_FILE = "annotations.json"
IMPORT_BEAT_EVERY = 50
# A box whose 1 - max class probability is above this is one the model is unsure of.
UNSURE_BOX = 0.3
# The score from which a predicted box is shown (pre-annotations, reasons, pages) when the
# version has no holdout to choose it on (`box_threshold`).
DEFAULT_BOX_THRESHOLD = 0.3
# Predicted boxes kept per page (the detector's own cap, `ml.tasks.object_detection`).
MAX_PREDICTED_BOXES = 512
# Page resamples of the holdout mAP@0.5 interval.
MAP_RESAMPLES = 200
# Largest zip member extracted (a page image or an annotation file).
MAX_MEMBER_BYTES = 256 * 1024 * 1024
_EXPORT_CHUNK = 500


def box_threshold(metrics: dict | None) -> float:
    """The score from which a version's boxes are shown: the one that gave the best F1 of
    boxes on its holdout (`ml.detection_metrics.best_score_threshold`), else
    DEFAULT_BOX_THRESHOLD."""
    value = ((metrics or {}).get("box_threshold") or {}).get("threshold")
    return DEFAULT_BOX_THRESHOLD if value is None else float(value)


def answer_boxes(answer) -> list:
    """The boxes (`ml.detection_io.Box`) of a stored answer or ground truth; [] for none."""
    from ml.detection_io import Box

    out = []
    for b in (answer or {}).get("boxes", []) if isinstance(answer, dict) else []:
        try:
            out.append(
                Box(float(b["x"]), float(b["y"]), float(b["w"]), float(b["h"]), str(b["label"]))
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


def boxes_answer(boxes) -> dict:
    """A stored answer of boxes (`ml.detection_io.Box` or `ls_payloads.Box`)."""
    rows = []
    for b in boxes:
        w = getattr(b, "w", None)
        w = b.width if w is None else w
        h = getattr(b, "h", None)
        h = b.height if h is None else h
        rows.append(
            {
                "x": round(float(b.x), 2),
                "y": round(float(b.y), 2),
                "w": round(float(w), 2),
                "h": round(float(h), 2),
                "label": str(b.label),
            }
        )
    return {"boxes": rows}


class ObjectDetection(TaskType):
    name = OBJECT_DETECTION
    title = "Object detection (boxes of several classes per image)"
    model_kind = "centernet"
    # Saliency and nearest labeled items read a classifier's class probabilities.
    explains = False
    # Pages are valued by what the detector got wrong on them (pick_values).
    values_picks = True

    # --- Label Studio ------------------------------------------------------------------------

    def label_config(self, *, classes, guidelines, image_px):
        return ls_payloads.labeling_config(self.name, classes, guidelines, image_px=image_px)

    def task_data(self, *, file, extra_files=()):
        return {ls_payloads.IMAGE_FIELD: ls_payloads.local_file_url(file)}

    def pre_annotation(self, *, predicted_class, confidence):
        return None  # a page's guess is its boxes: `pick_pre_annotation`

    def pick_pre_annotation(self, *, pick):
        """One rectangle per box the picking version predicted on the page with a score of
        at least its `box_threshold`, each with its score; the task's score is the page's
        uncertainty (what Label Studio sorts by)."""
        version_id = pick.selection_round.model_version_id
        if version_id is None:
            return None
        row = (
            Prediction.objects.filter(item_id=pick.item_id, model_version_id=version_id)
            .values_list(
                "boxes", "uncertainty", "model_version__class_names", "model_version__metrics"
            )
            .first()
        )
        item = pick.item
        if row is None or not item.width or not item.height:
            return None
        stored, uncertainty, names, metrics = row
        # Only the boxes the version is sure enough of: faint candidates would bury the page.
        shown = box_threshold(metrics)
        boxes = [
            ls_payloads.Box(x, y, w, h, names[int(c)], score)
            for x, y, w, h, c, score in stored or []
            if 0 <= int(c) < len(names) and score >= shown
        ]
        return ls_payloads.PushPrediction(
            result=ls_payloads.rectangles_result(
                boxes, image_width=item.width, image_height=item.height
            ),
            score=round(float(uncertainty), 4),
            model_version=ls_payloads.PREDICTION_MODEL_VERSION,
        )

    def read_answer(self, result):
        """The classes of the answer's boxes, each once, in the order first drawn."""
        return list(dict.fromkeys(b.label for b in ls_payloads.result_boxes(result)))

    def answer_class(self, result, class_ids):
        return None  # a page's answer is its boxes, not one class

    def answer_value(self, result):
        """The boxes of the answer (an empty list: the expert found nothing on the page)."""
        return boxes_answer(ls_payloads.result_boxes(result))

    def decide(self, votes: Sequence[Vote], *, overlap: int) -> Outcome:
        """Once `overlap` annotators answered: one answer is the ground truth as drawn;
        several are matched box by box (IoU 0.5, `ml.box_consensus`) and a box stands when
        most annotators drew it, with the agreement (F1 between annotators) for the page and
        per class; a page whose annotators disagree (agreement under 0.8, or a class tie)
        waits for review. All skipped is skipped."""
        from ml.box_consensus import box_consensus

        if len(votes) < max(1, overlap):
            return Outcome(state=ItemState.IN_ANNOTATION)
        answers = {
            v.annotator: answer_boxes(v.answer) if v.counts and v.answer is not None else None
            for v in votes
        }
        if all(boxes is None for boxes in answers.values()):
            all_skipped = all(v.cancelled for v in votes)
            return Outcome(state=ItemState.SKIPPED if all_skipped else ItemState.IN_ANNOTATION)
        found = box_consensus(answers)
        answer = boxes_answer(found.boxes or ())
        if found.per_class:
            answer["agreement_per_class"] = {k: round(v, 4) for k, v in found.per_class.items()}
        return Outcome(
            state=ItemState.IN_ANNOTATION if found.needs_review else ItemState.LABELED,
            label=None,
            decided_by=Decision.SINGLE if found.answered == 1 else Decision.MAJORITY,
            votes=found.answered,
            agreement=None if found.agreement is None else round(float(found.agreement), 4),
            needs_review=found.needs_review,
            answer=answer,
        )

    def class_in_use(self, *, project, name):
        """Whether a box of the ground truth or of an answer has the class."""
        from loupe.labeling.models import Annotation

        needle = json.dumps(name)
        for model in (GroundTruth, Annotation):
            answers = model.objects.filter(project=project, answer__isnull=False)
            for answer in answers.values_list("answer", flat=True).iterator(chunk_size=500):
                if needle in json.dumps(answer) and any(
                    b.label == name for b in answer_boxes(answer)
                ):
                    return True
        return False

    # --- import ------------------------------------------------------------------------------

    def import_items(self, *, job, path, accept, progress) -> bool:
        DetectionImport(job, path, accept, progress).run()
        return True

    # --- learning ----------------------------------------------------------------------------

    def training_rows(self, *, project, holdout):
        items = Item.objects.filter(
            project=project, ground_truth__isnull=False, ground_truth__needs_review=False
        )
        items = items.filter(split=Split.HOLDOUT) if holdout else items.exclude(split=Split.HOLDOUT)
        rows = items.order_by("id").values_list("id", "file", "sha256", "ground_truth__answer")
        return [TrainingRow(pk, file, None, sha, answer) for pk, file, sha, answer in rows]

    def training_targets(self, rows, *, classes):
        """Per page ``{"boxes": (m, 4) x1 y1 x2 y2, "labels": (m,)}`` in the project's class
        order; a box of a class the project no longer has is left out."""
        index = {c.name: i for i, c in enumerate(classes)}
        targets = []
        for row in rows:
            boxes = [b for b in answer_boxes(row.answer) if b.label in index]
            targets.append(
                {
                    "boxes": np.array([b.xyxy() for b in boxes], dtype=np.float32).reshape(-1, 4),
                    "labels": np.array([index[b.label] for b in boxes], dtype=np.int64),
                }
            )
        return targets

    def augmentation(self):
        from ml.detection_augment import DetectionAugment

        return DetectionAugment

    def augmentation_sentence(self, augment):
        return (
            f"Each training crop of a page is {augment.describe()}; pages are read at their"
            " own size. The project's augmentations setting changes each of these (0 turns"
            " one off)."
        )

    def train_options(self, *, config):
        """The detector's augmentations: the domain defaults with the project's changes
        (`Project.augmentations`, recorded in the run's config)."""
        from ml.detection_augment import DetectionAugment

        return {
            "augment": dataclasses.replace(DetectionAugment(), **config.get("augmentations", {}))
        }

    def item_inputs(self, *, files, extra_files, cache_keys, image_size, progress=None):
        """Grey pages at their own size, ``(1, H, W)`` each in [0, 1] (never rescaled: the
        detector reads them in tiles)."""
        return page_tensors(list(files), progress=progress)

    def holdout_report(self, *, model, x_train, y_train, x_holdout, y_holdout, names):
        """mAP@0.5 on the holdout pages with a 95% interval (pages resampled), COCO mAP,
        AP of small objects, per-class AP with its box support, the confusions, and what
        the figures stand on, and the box score from which its boxes are shown (the best F1
        of boxes on the holdout); beside them the same model's figures on its training pages
        (how far holdout is from what it learned)."""
        from ml.detection_metrics import best_score_threshold

        spec = self.ml_spec()
        predictions = spec.predict(model, x_holdout)
        found = spec.evaluate(y_holdout, predictions, class_names=names)
        metrics = dict(found.details)
        predicted = _page_boxes(predictions)
        boxes = int(sum(len(t["labels"]) for t in y_holdout))
        metrics["intervals"] = {"map50": map50_interval(y_holdout, predicted, names=names, seed=0)}
        metrics["interval_level"] = 0.95
        metrics["n_pages"], metrics["n_boxes"] = len(y_holdout), boxes
        metrics["holdout"] = (
            f"fixed project holdout: {len(y_holdout)} pages with {boxes} boxes"
            f" ({_support_words(y_holdout, names)})"
        )
        metrics["box_threshold"] = best_score_threshold(
            y_holdout, predicted, num_classes=len(names)
        )
        train_fit = spec.evaluate(y_train, spec.predict(model, x_train), class_names=names)
        baseline = {
            "name": "the same model on its own training pages (what it learned, not a holdout)",
            "map50": train_fit.details.get("map50"),
            "map": train_fit.details.get("map"),
            "n_pages": len(y_train),
        }
        return metrics, baseline

    def holdout_summary(self, metrics, baseline):
        figure, interval = summary_figure, summary_interval(metrics, "map50")
        return (
            f"holdout mAP@0.5 {figure(metrics.get('map50'))}{interval}"
            f" (on its training pages {figure(baseline.get('map50'))}),"
            f" mAP {figure(metrics.get('map'))}, AP small {figure(metrics.get('ap_small'))},"
            f" on {metrics.get('n_pages', 0)} pages, {metrics.get('n_boxes', 0)} boxes"
        )

    def predictions_insert(self, *, version, run, item_ids, probs, scored=None):
        """One Prediction per page: its most frequent predicted class (by box score), the
        page's uncertainty (`ml.tasks.object_detection.page_uncertainty`) and 1 minus it as
        confidence, the class shares as probs, and its boxes."""
        if scored is None:
            raise ApplicationError("Detection predictions need the chunk's boxes.")
        classes = dict(LabelClass.objects.filter(project=run.project).values_list("name", "pk"))
        names = version.class_names
        created_at = db_value(Prediction, "created_at", timezone.now())
        extras = scored.extras
        uncertainty = np.nan_to_num(np.asarray(scored.scores, dtype=np.float64), nan=0.0)
        rows = []
        for i, item in enumerate(item_ids.tolist()):
            present = extras["labels"][i] >= 0
            page = [
                [
                    round(float(x1), 1),
                    round(float(y1), 1),
                    round(float(x2 - x1), 1),
                    round(float(y2 - y1), 1),
                    int(label),
                    round(float(score), 4),
                ]
                for (x1, y1, x2, y2), label, score in zip(
                    extras["boxes"][i][present],
                    extras["labels"][i][present],
                    extras["box_scores"][i][present],
                    strict=True,
                )
            ][:MAX_PREDICTED_BOXES]
            share = np.asarray(probs[i], dtype=np.float64) if probs is not None else None
            top = names[int(share.argmax())] if page and share is not None else None
            rows.append(
                (
                    item,
                    version.pk,
                    run.pk,
                    classes.get(top) if top else None,
                    round(1.0 - float(uncertainty[i]), 5),
                    float(uncertainty[i]),
                    db_value(
                        Prediction,
                        "probs",
                        [] if share is None else np.round(share, 5).tolist(),
                    ),
                    db_value(Prediction, "boxes", page),
                    created_at,
                )
            )
        insert_rows(
            Prediction,
            (
                "item",
                "model_version",
                "scoring_run",
                "predicted_class",
                "confidence",
                "uncertainty",
                "probs",
                "boxes",
                "created_at",
            ),
            rows,
            ignore_conflicts=True,
        )

    def pick_reason(self, probs, names, *, extras, version, control, arm):
        """Names the boxes: how many the model found (at its `box_threshold`), how many of
        them it is unsure of the class of, and the class pairs it hesitates between ("3
        boxes between accidentalSharp and keySharp")."""
        labels = np.asarray(extras.get("labels", []))
        scores = np.nan_to_num(np.asarray(extras.get("box_scores", np.ones(len(labels)))), nan=0.0)
        present = (labels >= 0) & (scores >= box_threshold(version.metrics))
        count = int(present.sum())
        unsure = np.asarray(extras.get("box_uncertainty", np.zeros(len(labels))))[present]
        second = extras.get("box_second")
        doubtful = np.nan_to_num(unsure, nan=0.0) > UNSURE_BOX
        pairs: Counter = Counter()
        if second is not None:
            runner = np.asarray(second)[present]
            for first, other in zip(labels[present][doubtful], runner[doubtful], strict=True):
                if 0 <= other < len(names):
                    pairs[tuple(sorted((names[int(first)], names[int(other)])))] += 1
        found = f"{count} box{'es' if count != 1 else ''} found"
        if control:
            return f"picked at random, to check the model on ordinary pages; {found}"
        if arm == "random":
            return f"picked at random, to explore pages the model was not asked about; {found}"
        if not count:
            return (
                f"the model finds no box with a score of {box_threshold(version.metrics):.2f}"
                " or more on this page: is there really nothing on it?"
            )
        words = f"{found}, {int(doubtful.sum())} of them unsure"
        if pairs:
            named = ", ".join(f"{n} between {a} and {b}" for (a, b), n in pairs.most_common(3))
            words += f" ({named})"
        mean = float(np.nanmean(unsure)) if len(unsure) else 0.0
        return f"{words}; mean box uncertainty {mean:.2f}"

    def pick_values(self, *, picks):
        """A labeled page's value is what the detector that picked it got wrong on it:
        1 − F1 of the version's predicted boxes (at its `box_threshold`) against the page's
        ground-truth boxes (`ml.detection_metrics.page_value`). Pages waiting for review,
        or without the version's prediction, have none yet."""
        from ml.detection_metrics import page_value

        items = {item for item, _ in picks}
        versions = {version for _, version in picks}
        truths = dict(
            GroundTruth.objects.filter(item_id__in=items, needs_review=False).values_list(
                "item_id", "answer"
            )
        )
        shown = {
            pk: (names, box_threshold(metrics))
            for pk, names, metrics in ModelVersion.objects.filter(pk__in=versions).values_list(
                "pk", "class_names", "metrics"
            )
        }
        predicted = {
            (item, version): boxes
            for item, version, boxes in Prediction.objects.filter(
                item_id__in=list(truths), model_version_id__in=list(shown)
            ).values_list("item_id", "model_version_id", "boxes")
        }
        values = {}
        for item, version in picks:
            if item not in truths or (item, version) not in predicted:
                continue
            names, threshold = shown[version]
            values[(item, version)] = page_value(
                _predicted_page(predicted[(item, version)]),
                _truth_page(truths[item], names),
                score_threshold=threshold,
            )
        return values

    def label_suspects(self, *, project):
        return []  # the model's scan reads a classifier's probabilities

    # --- exports -----------------------------------------------------------------------------

    ground_truth_fields = (
        "item_id",
        "file",
        "original_name",
        "sha256",
        "boxes",
        "classes",
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
        """One row per labeled page: its box count, the classes on it, and how it was
        decided (the boxes themselves: COCO and YOLO exports)."""
        for item, truth in _labeled_pages(project=project, split=split):
            boxes = answer_boxes(truth["answer"])
            yield {
                "item_id": item["id"],
                "file": item["file"],
                "original_name": item["original_name"],
                "sha256": item["sha256"],
                "boxes": len(boxes),
                "classes": " ".join(sorted({b.label for b in boxes})),
                "split": item["split"],
                "source": item["source"],
                "decided_by": truth["decided_by"],
                "num_annotators": truth["num_annotators"],
                "agreement": truth["agreement"],
                "width": item["width"],
                "height": item["height"],
            }

    def prediction_rows(self, *, model_version):
        return prediction_rows(model_version=model_version)


# --- pixels ----------------------------------------------------------------------------------


def page_tensors(names: Sequence[str], *, progress=None) -> list:
    """Stored pages as grey tensors ``(1, H, W)`` in [0, 1], at their own size."""
    import torch
    from django.core.files.storage import default_storage
    from PIL import Image

    pages = []
    for i, name in enumerate(names):
        try:
            with default_storage.open(name, "rb") as handle, Image.open(handle) as image:
                grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        except OSError as exc:
            raise ApplicationError(f"The page '{name}' cannot be read: {exc}") from exc
        pages.append(torch.from_numpy(grey)[None])
        if progress and (i + 1) % 20 == 0:
            progress(i + 1, len(names))
    if progress:
        progress(len(names), len(names))
    return pages


def _page_boxes(predictions) -> list[dict]:
    from ml.tasks.object_detection import page_boxes

    return page_boxes(predictions)


def _predicted_page(boxes) -> dict:
    """A Prediction's stored boxes (``[x, y, w, h, class index, score]``) as
    `ml.detection_metrics` reads a page."""
    from ml.detection_metrics import xywh_to_xyxy

    rows = np.asarray(boxes or [], dtype=np.float64).reshape(-1, 6)
    return {
        "boxes": xywh_to_xyxy(rows[:, :4]),
        "labels": rows[:, 4].astype(np.int64),
        "scores": rows[:, 5],
    }


def _truth_page(answer, names: Sequence[str]) -> dict:
    """A page's ground-truth boxes with their classes indexed as the version's
    ``class_names``; a class the version does not know gets -1, which no prediction has."""
    index = {name: i for i, name in enumerate(names)}
    boxes = answer_boxes(answer)
    return {
        "boxes": np.array([b.xyxy() for b in boxes], dtype=np.float64).reshape(-1, 4),
        "labels": np.array([index.get(b.label, -1) for b in boxes], dtype=np.int64),
    }


def map50_interval(y_true, predicted, *, names, seed: int = 0) -> list[float] | None:
    """95% interval of mAP@0.5 over pages resampled with replacement (MAP_RESAMPLES, or
    the bootstrap setting when smaller); None with fewer than 2 pages."""
    from ml.detection_metrics import map50_resamples

    if len(y_true) < 2:
        return None
    values = map50_resamples(
        y_true,
        predicted,
        num_classes=len(names),
        n_resamples=min(MAP_RESAMPLES, settings.LOUPE_BOOTSTRAP_SAMPLES),
        seed=seed,
    )
    if not values:
        return None
    low, high = np.quantile(values, [0.025, 0.975])
    return [round(float(low), 4), round(float(high), 4)]


def _support_words(targets, names) -> str:
    counts = Counter(int(label) for t in targets for label in np.asarray(t["labels"]).tolist())
    if not counts:
        return "no boxes"
    fewest = min(counts.values())
    missing = len(names) - len(counts)
    words = f"{len(counts)} classes present, the rarest with {fewest} boxes"
    if missing:
        words += f"; {missing} classes have no holdout box, so no AP"
    return words


# --- exports ---------------------------------------------------------------------------------


def _labeled_pages(*, project, split=None) -> Iterator[tuple[dict, dict]]:
    truths = GroundTruth.objects.filter(project=project, needs_review=False)
    if split:
        truths = truths.filter(item__split=split)
    rows = truths.order_by("item_id").values(
        "answer",
        "decided_by",
        "num_annotators",
        "agreement",
        "item_id",
        "item__file",
        "item__original_name",
        "item__sha256",
        "item__split",
        "item__source",
        "item__width",
        "item__height",
    )
    for row in rows.iterator(chunk_size=_EXPORT_CHUNK):
        item = {k.removeprefix("item__"): v for k, v in row.items() if k.startswith("item__")}
        item["id"] = row["item_id"]
        yield item, row


def _export_name(item: dict) -> str:
    """A page's file name in an export: its imported name where it has one, unique by
    the item id."""
    original = PurePosixPath(item["original_name"] or item["file"]).name
    return f"{item['id']}_{original}"


def coco_export(*, project, split=None) -> Iterator[bytes]:
    """The project's ground truth as one COCO instances json, streamed: the pages in one
    pass over the database, their boxes in a second (`file_name` is the page's name in
    the YOLO zip's `images/`, its item id first)."""
    names = [c.name for c in LabelClass.objects.filter(project=project).order_by("order", "id")]
    ids = {name: i + 1 for i, name in enumerate(names)}
    yield b'{"images": ['
    separator = b""
    for item, _truth in _labeled_pages(project=project, split=split):
        image = {
            "id": item["id"],
            "file_name": _export_name(item),
            "width": item["width"],
            "height": item["height"],
        }
        yield separator + json.dumps(image).encode()
        separator = b", "
    yield b'], "annotations": ['
    separator, next_box = b"", 1
    for item, truth in _labeled_pages(project=project, split=split):
        for box in answer_boxes(truth["answer"]):
            if box.label not in ids:
                continue
            annotation = {
                "id": next_box,
                "image_id": item["id"],
                "category_id": ids[box.label],
                "bbox": [box.x, box.y, box.w, box.h],
                "area": round(box.w * box.h, 2),
                "iscrowd": 0,
            }
            yield separator + json.dumps(annotation).encode()
            separator, next_box = b", ", next_box + 1
    categories = [{"id": ids[n], "name": n} for n in names]
    yield b'], "categories": ' + json.dumps(categories).encode() + b"}"


def yolo_entries(*, project, split=None) -> Iterator[tuple[str, str | None, str | None]]:
    """What a YOLO folder of the ground truth holds, page by page, as (path in the folder,
    text, storage name of a page image): `labels/<page>.txt` and `images/<page>` per
    labeled page, then `data.yaml` naming the classes."""
    from ml.detection_io import ImageBoxes, to_yolo, yolo_paths

    names = [c.name for c in LabelClass.objects.filter(project=project).order_by("order", "id")]
    for item, truth in _labeled_pages(project=project, split=split):
        boxes = tuple(b for b in answer_boxes(truth["answer"]) if b.label in names)
        name = _export_name(item)
        page = ImageBoxes(name, int(item["width"]), int(item["height"]), boxes)
        for path, text in to_yolo([page], names).items():
            if path.startswith("labels/"):
                yield path, text, None
        yield yolo_paths(name)[0], None, item["file"]
    for path, text in to_yolo([], names).items():
        yield path, text, None


# --- import ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Page:
    file: str  # storage name
    original_name: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    image_format: str
    boxes: tuple | None  # None: unlabeled


class DetectionImport(TaskTypeImport):
    """One import job of a detection project, from a folder or a zip archive (the module's
    note): every page stored once, its boxes checked one by one, labeled pages with their
    imported ground truth, the rest in the pool. Every problem is a rejection with its
    reason: a page that cannot be read, a box left out."""

    beat_every = IMPORT_BEAT_EVERY

    def __init__(self, job, path: Path, accept, progress):
        super().__init__(job, accept, progress)
        self.path = path

    def run(self) -> None:
        if self.job.kind == ImportKind.MANIFEST:
            raise ApplicationError(
                "A detection import is a folder or a zip archive: COCO (annotations.json"
                " beside the pages), YOLO (images/, labels/ and data.yaml) or images alone."
            )
        if self.job.kind == ImportKind.ZIP:
            Path(settings.LOUPE_UPLOAD_DIR).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=settings.LOUPE_UPLOAD_DIR) as folder:
                root = _extract(self.path, Path(folder))
                self._import(root)
        else:
            self._import(self.path)

    def _import(self, root: Path) -> None:
        from ml.detection_io import IMAGE_SUFFIXES, ImageBoxes

        parsed = self._parse(root)
        if parsed is None:  # images alone: pool pages
            images = [
                ImageBoxes(p.relative_to(root).as_posix(), 0, 0, None)
                for p in sorted(root.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            ]
            file_classes: list[str] = []
        else:
            images, file_classes = parsed.images, parsed.classes
            for problem in parsed.rejected:
                self.reject(
                    f"{problem.file_name} box {problem.row}", f"{problem.reason}: {problem.message}"
                )
        known = self._classes(file_classes)
        self.job.total = len(images)
        run_beat(self.job, total=self.job.total)
        pages: list[_Page] = []
        for image in images:
            self.count()
            page = self._page(root, image, known)
            if page is not None:
                pages.append(page)
        with transaction.atomic():
            Project.objects.select_for_update().filter(pk=self.project.pk).first()
            inserted, labeled = _pages_insert(project=self.project, job=self.job, pages=pages)
            self.record(offered=len(pages), inserted=inserted, labeled=labeled)
        if self.progress:
            self.progress(self.job)

    def _parse(self, root: Path):
        """The source's pages and boxes: COCO, YOLO, or None for images alone."""
        from ml.detection_io import YOLO_NAMES_FILES, parse_coco, parse_yolo_folder

        coco = root / COCO_FILE
        if coco.is_file():
            try:
                data = json.loads(coco.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ApplicationError(f"{COCO_FILE} is not readable JSON: {exc}") from exc
            if not isinstance(data, dict) or not isinstance(data.get("images"), list):
                raise ApplicationError(
                    f"{COCO_FILE} is not COCO instances: it needs a list of images",
                    extra={"keys": ["images", "annotations", "categories"]},
                )
            try:
                return parse_coco(data)
            except (KeyError, TypeError, AttributeError) as exc:
                raise ApplicationError(f"{COCO_FILE} is malformed: {exc!r}") from exc
        if any((root / n).is_file() for n in YOLO_NAMES_FILES) and (root / "labels").is_dir():
            try:
                return parse_yolo_folder(root)
            except ValueError as exc:
                raise ApplicationError(f"YOLO folder: {exc}") from exc
        return None

    def _classes(self, file_classes: list[str]) -> set[str]:
        """The project's class names; a project without classes takes the file's, in the
        file's order (a project's labeling config is made from its classes when it is
        first pushed)."""
        known = list(
            LabelClass.objects.filter(project=self.project)
            .order_by("order", "id")
            .values_list("name", flat=True)
        )
        if not known and file_classes:
            names = list(
                dict.fromkeys(str(n).strip()[:100] for n in file_classes if str(n).strip())
            )
            LabelClass.objects.bulk_create(
                LabelClass(project=self.project, name=name, order=order)
                for order, name in enumerate(names)
            )
            known = names
        return set(known)

    def _page(self, root: Path, image, known: set[str]) -> _Page | None:
        """Stores one page (None when it is rejected) with its boxes of known classes."""
        where = image.file_name
        target = (root / image.file_name).resolve()
        real_root = root.resolve()
        if real_root not in target.parents or not target.is_file():
            self.reject(where, "file not found inside the imported folder")
            return None
        entry = sources.SourceEntry(name=where, opener=functools.partial(open, target, "rb"))
        accepted, reason = self.accept(entry)
        if reason:
            self.reject(where, reason)
            return None
        boxes = image.boxes
        if boxes is not None and (image.width, image.height) != (accepted.width, accepted.height):
            self.reject(
                where,
                f"the annotations say {image.width}x{image.height} pixels but the image is"
                f" {accepted.width}x{accepted.height}: its boxes are left out, the page joins"
                " the pool",
            )
            boxes = None
        if boxes is not None:
            kept = []
            for row, box in enumerate(boxes):
                if box.label in known:
                    kept.append(box)
                else:
                    self.reject(
                        f"{where} box {row}",
                        f"unknown_class: '{box.label}' is not a class of the project",
                    )
            # A page whose every box was refused is sent to annotators, not trained on as empty.
            boxes = tuple(kept) if kept or not boxes else None
        return _Page(
            file=accepted.file_name,
            original_name=accepted.original_name,
            sha256=accepted.sha256,
            size_bytes=accepted.size_bytes,
            width=accepted.width,
            height=accepted.height,
            image_format=accepted.image_format,
            boxes=boxes,
        )


def _extract(archive_path: Path, into: Path) -> Path:
    """Extracts a zip's safe members (no absolute path, no `..`, none too large) and
    returns the folder holding them (the archive's single top folder, if it has one)."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ApplicationError(f"'{archive_path.name}' is not a readable zip archive.") from exc
    with archive:
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            if (
                info.is_dir()
                or not parts
                or info.filename.startswith("/")
                or ".." in parts
                or any(p.startswith(".") or p == "__MACOSX" for p in parts)
                or info.file_size > MAX_MEMBER_BYTES
            ):
                continue
            target = into.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
    children = [p for p in into.iterdir() if not p.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return into


def _pages_insert(*, project, job, pages: list[_Page]) -> tuple[int, int]:
    """Inserts the pages not in the project yet, and the imported ground truth of the
    labeled ones; returns (inserted, labeled). Inside the caller's transaction."""
    keyed: dict[str, _Page] = {}
    for page in pages:
        keyed.setdefault(page.sha256, page)
    existing = set(
        Item.objects.filter(project=project, sha256__in=list(keyed)).values_list(
            "sha256", flat=True
        )
    )
    fresh = [page for sha, page in keyed.items() if sha not in existing]
    now = db_value(Item, "created_at", timezone.now())
    holdout = HoldoutAssigner(project=project, fraction=job.holdout_fraction)
    rows, truths = [], []
    for page in fresh:
        split, state = Split.POOL, ItemState.UNLABELED
        if page.boxes is not None:
            split = holdout.split_for(sha256=page.sha256, class_id=None)
            state = ItemState.LABELED
            truths.append((page.sha256, None, boxes_answer(page.boxes), split))
        rows.append(
            (
                project.pk,
                page.file,
                page.original_name[:500],
                page.sha256,
                page.size_bytes,
                page.width,
                page.height,
                page.image_format,
                db_value(Item, "metadata", {}),
                job.source_tag[:100],
                split,
                state,
                job.pk,
                now,
                now,
            )
        )
    insert_rows(Item, ITEM_IMPORT_COLUMNS, rows)
    imported_ground_truth_create(project=project, truths=truths)
    return len(fresh), len(truths)


__all__ = [
    "OBJECT_DETECTION",
    "DetectionImport",
    "ObjectDetection",
    "answer_boxes",
    "boxes_answer",
    "coco_export",
    "page_tensors",
    "yolo_entries",
]

"""Object detection of tiny objects on large pages (music-score scanning): boxes per page.

An item is a page, a float array or tensor ``(C, H, W)`` or ``(H, W)`` in [0, 1] (uint8 is
divided by 255), of any size: pages are never resized, they are trained on native-resolution
crops (:mod:`ml.detection_training`) and scored as overlapping tiles (:mod:`ml.detection`).
``x`` is a list of pages (or a batch ``(n, C, H, W)`` of equal ones); ``y`` one dict per
page, ``{"boxes": (m, 4) float, "labels": (m,) int}``, boxes ``(x1, y1, x2, y2)`` in the
page's pixels and labels indexing the project's classes. The headline is mAP@0.5 over the
classes (COCO's 101-point AP, :mod:`ml.detection_metrics`).

What a page's prediction holds: ``scores (n,)`` the page's uncertainty (the boxes'
uncertainty averaged with their scores as weights, so faint candidate boxes weigh little; 0
for a page without boxes), the one score per item an artifact keeps
(:class:`ml.artifacts.ItemArrays`) and the task-level score of a pre-annotation;
``probs (n, k)`` what the page shows, by class: each class's share of the page's boxes,
weighted by box score (rows sum to 1; a page without boxes gets ``1/k`` everywhere), which
the platform keeps as the prediction's probabilities and names the page's most frequent
class from; ``embeddings (n, d)`` the page's pooled features; and per-box arrays in
``extras``, padded to ``max_boxes`` boxes per page by descending box score (NaN, or -1 for
class indices, past a page's last box) so that scoring chunks join: ``box_uncertainty (n,
B)`` 1 − max class probability, which :meth:`ObjectDetectionSpec.to_acquisition_inputs`
hands the strategies as ``item_scores`` (they reduce the box axis: sum, mean or max),
``box_entropy (n, B)`` the entropy over classes, ``boxes (n, B, 4)``, ``labels (n, B)``,
``box_second (n, B)`` the runner-up class of each box (the most probable one after its
label, what a pick's reason names: "3 boxes between accidentalSharp and keySharp"; -1 with a
single class), ``box_scores (n, B)``, ``box_count (n,)`` (boxes found before the cut to
``max_boxes``), with MC draws ``box_mutual_information (n, B)`` and with
``keep_class_probs`` ``class_probs (n, B, K)``.
"""

from __future__ import annotations

import numpy as np

from ml.artifacts import ItemArrays
from ml.detection import CenterNet, PageDetections, detect
from ml.detection_augment import DetectionAugment
from ml.detection_metrics import detection_metrics
from ml.detection_training import DetectionTrainConfig, DetectionTrainResult, train_detector
from ml.strategies.base import AcquisitionInputs
from ml.strategies.detection import OBJECT_DETECTION
from ml.tasks.base import Evaluation, Predictions, ProgressCallback, TaskSpec

#: Boxes kept per page in the padded arrays (a printed score page holds ~400 symbols).
MAX_BOXES = 512


def _detection_config(config) -> DetectionTrainConfig:
    """A DetectionTrainConfig as it is; from a classification ``TrainConfig`` (the
    platform's settings) its seed, device and steps: ``max_steps`` (a warm start's
    fine-tuning), else ``min_steps`` (the platform's planned steps from scratch), else the
    detector's default; its ``augment`` when it is a :class:`DetectionAugment` and its
    ``class_weighting``; the detector's defaults for the rest."""
    if config is None:
        return DetectionTrainConfig()
    if isinstance(config, DetectionTrainConfig):
        return config
    defaults = DetectionTrainConfig()
    steps = (
        getattr(config, "max_steps", None) or getattr(config, "min_steps", None) or defaults.steps
    )
    augment = getattr(config, "augment", None)
    weighting = getattr(config, "class_weighting", defaults.class_weighting)
    return DetectionTrainConfig(
        steps=int(steps),
        seed=int(getattr(config, "seed", defaults.seed)),
        device=getattr(config, "device", None),
        # A classification augmentation (a callable on image batches) does not apply to pages.
        augment=augment if isinstance(augment, DetectionAugment) else defaults.augment,
        class_weighting=weighting if weighting in ("none", "inverse", "effective") else "inverse",
    )


def _pages(x) -> list:
    """The pages of ``x``: a list as it is, a batch ``(n, C, H, W)`` page by page."""
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x[i] for i in range(len(x))]


def _padded(values: list[np.ndarray], width: int, fill, dtype) -> np.ndarray:
    tail = values[0].shape[1:] if values else ()
    out = np.full((len(values), width, *tail), fill, dtype=dtype)
    for i, v in enumerate(values):
        out[i, : min(len(v), width)] = v[:width]
    return out


def page_uncertainty(found: PageDetections) -> float:
    """A page's uncertainty: its boxes' 1 − max class probability, averaged with the box
    scores as weights (a faint candidate box says little); 0 without boxes."""
    weight = found.scores.astype(np.float64)
    if weight.sum() <= 0:
        return 0.0
    return float((weight * found.uncertainty).sum() / weight.sum())


def class_shares(found: PageDetections, num_classes: int) -> np.ndarray:
    """What a page shows, by class ``(k,)``: each class's share of the page's boxes, the
    boxes weighted by their scores (by count when no score is positive); ``1/k`` for each
    class on a page without boxes."""
    labels = np.asarray(found.labels, dtype=np.int64).reshape(-1)
    if labels.size == 0:
        return np.full(num_classes, 1.0 / num_classes)
    weight = np.asarray(found.scores, dtype=np.float64).reshape(-1)
    if not weight.sum() > 0:
        weight = np.ones(labels.size)
    shares = np.bincount(labels, weights=weight, minlength=num_classes)[:num_classes]
    return shares / shares.sum()


def runner_up(found: PageDetections, num_classes: int) -> np.ndarray:
    """Per box ``(m,)``: the most probable class of its ``class_probs`` other than its
    label (the class an expert weighs it against); -1 everywhere with a single class."""
    labels = np.asarray(found.labels, dtype=np.int64).reshape(-1)
    if num_classes < 2 or labels.size == 0:
        return np.full(labels.size, -1, dtype=np.int64)
    probs = np.asarray(found.class_probs, dtype=np.float64).reshape(-1, num_classes).copy()
    probs[np.arange(labels.size), labels] = -np.inf
    return probs.argmax(axis=1).astype(np.int64)


def page_boxes(predictions: Predictions) -> list[dict]:
    """The predicted boxes of each page, unpadded: ``{"boxes", "labels", "scores"}`` as
    :func:`ml.detection_metrics.detection_metrics` reads (and pre-annotations need)."""
    extras = predictions.extras
    out = []
    for boxes, labels, scores in zip(
        extras["boxes"], extras["labels"], extras["box_scores"], strict=True
    ):
        present = labels >= 0
        out.append({"boxes": boxes[present], "labels": labels[present], "scores": scores[present]})
    return out


class ObjectDetectionSpec(TaskSpec):
    """Boxes of several classes per page from a CenterNet-style detector at stride 4; the
    headline is mAP@0.5."""

    name = OBJECT_DETECTION
    headline_metric = "map50"

    def build_model(
        self,
        kind: str = "centernet",
        *,
        num_classes: int,
        image_size: int | None = None,
        seed=None,
        **options,
    ):
        """A fresh :class:`ml.detection.CenterNet` (``kind="centernet"``) for
        ``num_classes`` classes. ``image_size`` changes nothing: pages keep their size.
        ``options``: ``in_channels`` (1, grey pages, by default), ``width``, ``dropout``."""
        if kind != "centernet":
            raise ValueError(f"unknown detection model {kind!r}; choose 'centernet'")
        return CenterNet(num_classes, seed=seed, **options)

    def train(
        self,
        model,
        x,
        y,
        *,
        val_x=None,
        val_y=None,
        config=None,
        progress: ProgressCallback | None = None,
    ) -> DetectionTrainResult:
        """Trains on pages ``x`` and their boxes ``y`` (the module's note) with
        :func:`ml.detection.train_detector`; with a holdout, its mAP@0.5 joins the last
        history entry as ``val_map50``. Deterministic by ``config.seed``."""
        config = _detection_config(config)
        result = train_detector(model, _pages(x), list(y), config=config, progress=progress)
        if val_x is not None and val_y is not None and len(val_y):
            held = self.evaluate(val_y, self.predict(result.model, val_x), class_names=None)
            result.history.append({"step": config.steps, "val_map50": held.value})
        return result

    def predict(
        self,
        model,
        x,
        *,
        batch_size: int = 16,
        mc_samples: int = 0,
        seed: int = 0,
        max_boxes: int = MAX_BOXES,
        keep_class_probs: bool = False,
        **detect_options,
    ) -> Predictions:
        """:class:`Predictions` of pages ``x`` (the module's note for the arrays);
        ``detect_options`` go to :func:`ml.detection.detect` (``tile_size``, ``overlap``,
        ``score_threshold``, ``nms_iou``)."""
        found: list[PageDetections] = detect(
            model,
            _pages(x),
            batch_size=batch_size,
            mc_samples=mc_samples,
            seed=seed,
            **detect_options,
        )
        k = model.num_classes
        uncertainty = _padded([f.uncertainty for f in found], max_boxes, np.nan, np.float32)
        extras = {
            "boxes": _padded(
                [f.boxes.reshape(-1, 4) for f in found], max_boxes, np.nan, np.float32
            ),
            "labels": _padded([f.labels for f in found], max_boxes, -1, np.int64),
            "box_second": _padded([runner_up(f, k) for f in found], max_boxes, -1, np.int64),
            "box_scores": _padded([f.scores for f in found], max_boxes, np.nan, np.float32),
            "box_uncertainty": uncertainty,
            "box_entropy": _padded([f.entropy for f in found], max_boxes, np.nan, np.float32),
            "box_count": np.array([len(f.boxes) for f in found], dtype=np.int64),
        }
        if mc_samples:
            extras["box_mutual_information"] = _padded(
                [f.mutual_information for f in found], max_boxes, np.nan, np.float32
            )
        if keep_class_probs:
            extras["class_probs"] = _padded(
                [f.class_probs.reshape(-1, k) for f in found], max_boxes, np.nan, np.float32
            )
        embeddings = (
            np.stack([f.embedding for f in found])
            if found
            else np.empty((0, model.embedding_dim), np.float32)
        )
        probs = (
            np.stack([class_shares(f, k) for f in found]).astype(np.float32)
            if found
            else np.empty((0, k), np.float32)
        )
        return Predictions(
            probs=probs,
            scores=np.array([page_uncertainty(f) for f in found], dtype=np.float32),
            embeddings=embeddings,
            extras=extras,
        )

    def evaluate(
        self, y_true, predictions: Predictions, *, class_names: list[str] | None
    ) -> Evaluation:
        """mAP@0.5 of the predicted boxes against the true ones, page by page, with COCO's
        mAP@[.5:.95], AP of small objects, per-class AP and support and the confusions
        (:func:`ml.detection_metrics.detection_metrics`). Without ``class_names`` the
        classes are numbered up to the largest label seen."""
        predicted = page_boxes(predictions)
        if class_names is None:
            labels = [np.asarray(t["labels"]).reshape(-1) for t in y_true]
            labels += [p["labels"] for p in predicted]
            top = max((int(lab.max()) for lab in labels if lab.size), default=0)
            class_names = [str(c) for c in range(top + 1)]
        details = detection_metrics(
            list(y_true), predicted, num_classes=len(class_names), class_names=class_names
        )
        value = details[self.headline_metric]
        return Evaluation(
            metric=self.headline_metric,
            value=float("nan") if value is None else value,
            per_class=details["per_class"],
            details=details,
        )

    def to_acquisition_inputs(self, scored: ItemArrays, **labeled) -> AcquisitionInputs:
        """Per-box uncertainty ``item_scores (n, max_boxes)`` from
        ``extras["box_uncertainty"]`` (NaN past a page's boxes; the strategy reduces the box
        axis) and the page embeddings; an artifact without the per-box extra gives its
        per-page ``scores``."""
        item_scores = scored.extras.get("box_uncertainty", scored.scores)
        has_embeddings = scored.embeddings is not None and np.asarray(scored.embeddings).size
        return AcquisitionInputs(
            embeddings=scored.embeddings if has_embeddings else None,
            item_scores=item_scores,
            **labeled,
        )

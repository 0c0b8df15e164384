"""Detection metrics as COCO defines them: IoU, NMS, AP, mAP, AP of small objects, confusions.

Boxes are ``(x1, y1, x2, y2)`` in pixels everywhere in Loupe's learning code: x to the right,
y down, ``x2 > x1`` and ``y2 > y1``; a box's area is ``(x2 - x1) * (y2 - y1)``. COCO files and
Label Studio speak ``(x, y, w, h)``: :func:`xywh_to_xyxy` and :func:`xyxy_to_xywh` convert.

A page's boxes are a dict ``{"boxes": (m, 4) float, "labels": (m,) int}``, with ``"scores"
(m,)`` for predictions. The AP of a class is COCO's: detections sorted by score, each matched
greedily to the unmatched true box of its class it overlaps most (IoU at least the threshold),
precision made monotone and read at 101 recall points (0, 0.01, ..., 1). A class without true
boxes has no AP and stays out of the means, as in pycocotools. Unlike pycocotools' default,
no page is cut to its 100 best detections: a printed score page holds several hundred
symbols. With fewer than 100 detections per page the figures equal pycocotools' (the tests
hold its numbers for random cases).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: IoU thresholds of COCO's mAP: 0.50, 0.55, ..., 0.95.
COCO_IOUS = np.linspace(0.5, 0.95, 10)
#: Recall points of COCO's interpolated precision.
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
#: COCO's "small": area up to 32² pixels.
SMALL_AREA = 32.0**2


def xywh_to_xyxy(boxes) -> np.ndarray:
    """``(x, y, w, h)`` boxes ``(m, 4)`` as ``(x1, y1, x2, y2)``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_xywh(boxes) -> np.ndarray:
    """``(x1, y1, x2, y2)`` boxes ``(m, 4)`` as ``(x, y, w, h)``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def box_area(boxes) -> np.ndarray:
    """Areas ``(m,)`` of ``(x1, y1, x2, y2)`` boxes (0 for degenerate ones)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a, b) -> np.ndarray:
    """Intersection over union ``(n, m)`` of boxes ``a (n, 4)`` and ``b (m, 4)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _overlapping_pairs(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(a, b)`` of boxes whose x ranges overlap, found by a sweep over the
    boxes sorted by x1: on a page of small objects that is a few neighbours per box, not
    all ``m²`` pairs."""
    by_x = np.argsort(boxes[:, 0], kind="stable")
    x1 = boxes[by_x, 0]
    ends = np.searchsorted(x1, boxes[by_x, 2], side="left")
    counts = np.clip(ends - np.arange(len(boxes)) - 1, 0, None)
    first = np.repeat(np.arange(len(boxes)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return by_x[first], by_x[first + 1 + offsets]


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = box_area(a) + box_area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes, scores, iou_threshold: float = 0.5) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, highest score first: a box
    goes when it overlaps a kept, higher-scored one by more than ``iou_threshold``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(boxes)
    order = np.argsort(-scores, kind="stable")
    if n <= 1:
        return order.astype(np.int64)
    a, b = _overlapping_pairs(boxes)
    close = _pair_iou(boxes[a], boxes[b]) > iou_threshold
    src = np.concatenate([a[close], b[close]])
    dst = np.concatenate([b[close], a[close]])
    by_src = np.argsort(src, kind="stable")
    dst = dst[by_src]
    bounds = np.searchsorted(src[by_src], np.arange(n + 1))
    suppressed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        # Neighbours scored higher were decided already; marking them changes nothing.
        suppressed[dst[bounds[i] : bounds[i + 1]]] = True
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes, scores, labels, iou_threshold: float = 0.5) -> np.ndarray:
    """Class-wise NMS: boxes of different classes never suppress each other. Indices kept,
    by descending score."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    kept = [
        np.flatnonzero(labels == c)[nms(boxes[labels == c], scores[labels == c], iou_threshold)]
        for c in np.unique(labels)
    ]
    if not kept:
        return np.empty(0, dtype=np.int64)
    keep = np.concatenate(kept)
    return keep[np.argsort(-scores[keep], kind="stable")]


def interpolated_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """COCO's 101-point AP of a precision/recall curve (detections in score order): the
    precision made non-increasing from the right, read at each recall point (0 past the
    highest recall reached), averaged."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.size == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    read = np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)
    return float(read.mean())


def _page(entry: dict, *, predicted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.asarray(entry.get("boxes", np.empty((0, 4))), dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(entry.get("labels", np.empty(0)), dtype=np.int64).reshape(-1)
    if predicted:
        scores = np.asarray(entry.get("scores", np.ones(len(boxes))), dtype=np.float64)
    else:
        scores = np.ones(len(boxes))
    if not (len(boxes) == len(labels) == len(scores.reshape(-1))):
        raise ValueError(
            f"a page has {len(boxes)} boxes, {len(labels)} labels and {scores.size} scores"
        )
    return boxes, labels, scores.reshape(-1)


def _match_class(
    truths: list[tuple[np.ndarray, np.ndarray]],
    preds: list[tuple[np.ndarray, np.ndarray]],
    iou_thresholds: np.ndarray,
    area_range: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, int]:
    """For one class over all pages: detection scores ``(d,)``, whether each detection is a
    true positive at each threshold ``(t, d)`` (NaN: ignored), and the number of true boxes
    in the area range. COCO's rules: a true box outside the area range is matched only after
    the others and a detection matched to it is ignored; an unmatched detection outside the
    range is ignored too."""
    lo, hi = area_range
    all_scores, all_hits = [], []
    support = 0
    for (gt_boxes, _), (det_boxes, det_scores) in zip(truths, preds, strict=True):
        gt_area = box_area(gt_boxes)
        gt_ignored = (gt_area < lo) | (gt_area > hi)
        support += int((~gt_ignored).sum())
        # True boxes in range come first, so a detection prefers them (COCO sorts gts so).
        gt_order = np.argsort(gt_ignored, kind="stable")
        gt_boxes, gt_ignored = gt_boxes[gt_order], gt_ignored[gt_order]
        order = np.argsort(-det_scores, kind="stable")
        det_boxes, det_scores = det_boxes[order], det_scores[order]
        ious = box_iou(det_boxes, gt_boxes)
        det_area = box_area(det_boxes)
        hits = np.zeros((len(iou_thresholds), len(det_boxes)))
        taken = np.zeros((len(iou_thresholds), len(gt_boxes)), dtype=bool)
        floor = min(float(iou_thresholds.min()), 1 - 1e-10)
        outside = (det_area < lo) | (det_area > hi)
        for d in range(len(det_boxes)):
            # Candidates in COCO's order of preference: in range first, then by IoU.
            candidates = np.flatnonzero(ious[d] >= floor)
            candidates = candidates[np.lexsort((-ious[d, candidates], gt_ignored[candidates]))]
            for t, threshold in enumerate(iou_thresholds):
                match = -1
                for g in candidates:
                    if not taken[t, g] and ious[d, g] >= min(threshold, 1 - 1e-10):
                        match = g
                        break
                if match > -1:
                    taken[t, match] = True
                    hits[t, d] = np.nan if gt_ignored[match] else 1.0
                elif outside[d]:
                    hits[t, d] = np.nan
        all_scores.append(det_scores)
        all_hits.append(hits)
    scores = np.concatenate(all_scores) if all_scores else np.empty(0)
    hits = np.concatenate(all_hits, axis=1) if all_hits else np.empty((len(iou_thresholds), 0))
    return scores, hits, support


def _class_ap(scores: np.ndarray, hits: np.ndarray, support: int) -> np.ndarray | None:
    """AP ``(t,)`` at each threshold of one class; None without true boxes."""
    if support == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    out = []
    for row in hits[:, order]:
        row = row[~np.isnan(row)]
        tp = np.cumsum(row)
        fp = np.cumsum(1 - row)
        recall = tp / support
        precision = tp / np.maximum(tp + fp, np.finfo(float).eps)
        out.append(interpolated_ap(recall, precision))
    return np.asarray(out)


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def class_confusions(
    y_true: list[dict],
    y_pred: list[dict],
    num_classes: int,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.3,
) -> np.ndarray:
    """``(k, k)`` counts of predicted boxes (score at least ``score_threshold``) matched to a
    true box regardless of class, rows the true class, columns the predicted one: the diagonal
    is boxes found with the right class, the rest the confusions. Matching is greedy by
    score, each true box taken once, at IoU at least ``iou_threshold``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for truth, pred in zip(y_true, y_pred, strict=True):
        gt_boxes, gt_labels, _ = _page(truth, predicted=False)
        det_boxes, det_labels, det_scores = _page(pred, predicted=True)
        confident = det_scores >= score_threshold
        det_boxes, det_labels, det_scores = (
            det_boxes[confident],
            det_labels[confident],
            det_scores[confident],
        )
        ious = box_iou(det_boxes, gt_boxes)
        taken = np.zeros(len(gt_boxes), dtype=bool)
        for d in np.argsort(-det_scores, kind="stable"):
            candidates = np.where(taken, -1.0, ious[d])
            g = int(np.argmax(candidates)) if len(gt_boxes) else -1
            if g >= 0 and candidates[g] >= iou_threshold:
                taken[g] = True
                matrix[gt_labels[g], det_labels[d]] += 1
    return matrix


def detection_metrics(
    y_true: list[dict],
    y_pred: list[dict],
    *,
    num_classes: int,
    class_names: list[str] | None = None,
    confusion_score: float = 0.3,
) -> dict:
    """Every detection figure of predictions against true boxes, page by page, JSON-ready.

    ``map50`` (the headline: mean over classes of AP at IoU 0.5), ``map`` (COCO's mean over
    IoU 0.50:0.95), ``map75``, ``ap_small`` (mAP@[.5:.95] over objects of area < 32²),
    ``per_class`` (``class``, ``ap50``, ``ap``, ``ap_small``, ``support`` true boxes,
    ``predicted`` boxes), ``confusion_matrix`` (:func:`class_confusions`) and
    ``confusions``: the off-diagonal cells, largest first. A figure is None where no true box
    could measure it.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true pages but {len(y_pred)} predicted ones")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    truths = [_page(t, predicted=False) for t in y_true]
    preds = [_page(p, predicted=True) for p in y_pred]
    per_class = []
    for c in range(num_classes):
        gt = [(b[lab == c], lab[lab == c]) for b, lab, _ in truths]
        det = [(b[lab == c], s[lab == c]) for b, lab, s in preds]
        all_ap = _class_ap(*_match_class(gt, det, COCO_IOUS, (0.0, np.inf)))
        small_ap = _class_ap(*_match_class(gt, det, COCO_IOUS, (0.0, SMALL_AREA)))
        per_class.append(
            {
                "class": names[c],
                "ap50": None if all_ap is None else float(all_ap[0]),
                "ap75": None if all_ap is None else float(all_ap[5]),
                "ap": None if all_ap is None else float(all_ap.mean()),
                "ap_small": None if small_ap is None else float(small_ap.mean()),
                "support": int(sum(len(g[0]) for g in gt)),
                "predicted": int(sum(len(d[0]) for d in det)),
            }
        )
    matrix = class_confusions(y_true, y_pred, num_classes, score_threshold=confusion_score)
    confusions = sorted(
        (
            {"true": names[i], "predicted": names[j], "count": int(matrix[i, j])}
            for i in range(num_classes)
            for j in range(num_classes)
            if i != j and matrix[i, j]
        ),
        key=lambda cell: -cell["count"],
    )
    return {
        "map50": _mean([row["ap50"] for row in per_class]),
        "map": _mean([row["ap"] for row in per_class]),
        "map75": _mean([row["ap75"] for row in per_class]),
        "ap_small": _mean([row["ap_small"] for row in per_class]),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "confusions": confusions,
        "confusion_score": confusion_score,
        "pages": len(y_true),
        "true_boxes": int(sum(len(t[0]) for t in truths)),
    }


def best_score_threshold(
    y_true: Sequence[dict],
    y_pred: Sequence[dict],
    *,
    num_classes: int,
    iou_threshold: float = 0.5,
    candidates: Sequence[float] = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2)),
) -> dict:
    """The box score from which predictions are best shown as boxes: the threshold of
    ``candidates`` with the highest F1 of predicted boxes against true ones (same class,
    IoU at least ``iou_threshold``, each true box matched once, by descending score), with
    its precision and recall. Keeping only the boxes above a threshold keeps a prefix of
    the score order, so one matching serves every threshold. ``threshold`` is None when no
    page has a true box."""
    scores, hits, support = [], [], 0
    for c in range(num_classes):
        truths, preds = [], []
        for truth, pred in zip(y_true, y_pred, strict=True):
            gt_boxes, gt_labels, _ = _page(truth, predicted=False)
            det_boxes, det_labels, det_scores = _page(pred, predicted=True)
            truths.append((gt_boxes[gt_labels == c], None))
            preds.append((det_boxes[det_labels == c], det_scores[det_labels == c]))
        s, h, n = _match_class(truths, preds, np.array([iou_threshold]), (0.0, np.inf))
        scores.append(s)
        hits.append(np.nan_to_num(h[0], nan=0.0))
        support += n
    scores = np.concatenate(scores) if scores else np.empty(0)
    hits = np.concatenate(hits) if hits else np.empty(0)
    if support == 0:
        return {"threshold": None, "f1": None, "precision": None, "recall": None}
    best = None
    for t in candidates:
        kept = scores >= t
        tp = float(hits[kept].sum())
        shown = int(kept.sum())
        f1 = 2 * tp / (shown + support) if shown + support else 0.0
        if best is None or f1 > best["f1"] + 1e-12:
            best = {
                "threshold": float(t),
                "f1": round(f1, 4),
                "precision": round(tp / shown, 4) if shown else None,
                "recall": round(tp / support, 4),
            }
    return best


def page_value(
    predicted_boxes: dict, truth_boxes: dict, *, score_threshold: float, iou: float = 0.5
) -> float:
    """What a labeled page taught the detector that picked it: 1 − F1 of its predicted
    boxes (those scoring at least ``score_threshold``) against the page's true boxes, a box
    found when it has the true box's class and overlaps it by IoU at least ``iou`` (each
    true box matched once, by descending score, as :func:`best_score_threshold` matches).

    A page the model already boxed right teaches nearly nothing (0); a page of boxes it
    missed, misclassified or invented teaches most (1). A page of boxes has no single
    class to be surprised by, so this is the per-pick value an adaptive mix over pages
    compares its arms by (``ml.strategies.adaptive.PickHistory.value``). The F1 is read at
    the threshold the boxes are shown from, since those are the boxes the expert corrects.
    0 when neither side has a box (nothing to find, nothing invented), 1 when only one has."""
    gt_boxes, gt_labels, _ = _page(truth_boxes, predicted=False)
    det_boxes, det_labels, det_scores = _page(predicted_boxes, predicted=True)
    shown = det_scores >= score_threshold
    det_boxes, det_labels, det_scores = det_boxes[shown], det_labels[shown], det_scores[shown]
    if len(gt_boxes) + len(det_boxes) == 0:
        return 0.0
    found = 0.0
    for c in np.intersect1d(gt_labels, det_labels):
        _, hits, _ = _match_class(
            [(gt_boxes[gt_labels == c], None)],
            [(det_boxes[det_labels == c], det_scores[det_labels == c])],
            np.array([iou]),
            (0.0, np.inf),
        )
        found += float(np.nan_to_num(hits[0], nan=0.0).sum())
    return 1.0 - 2.0 * found / (len(gt_boxes) + len(det_boxes))


def map50_resamples(
    y_true: Sequence[dict],
    y_pred: Sequence[dict],
    *,
    num_classes: int,
    n_resamples: int,
    seed: int = 0,
) -> list[float]:
    """mAP@0.5 of ``n_resamples`` resamples of the pages (drawn with replacement by
    ``numpy.random.default_rng(seed)``), each as :func:`detection_metrics` gives it for the
    resampled list (a resample where no class has a true box is left out). Boxes are
    matched within their page, so each page is matched once and the resamples only
    re-rank the matches."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true pages but {len(y_pred)} predicted ones")
    truths = [_page(t, predicted=False) for t in y_true]
    preds = [_page(p, predicted=True) for p in y_pred]
    at_50 = np.array([0.5])
    matched = [
        [
            _match_class(
                [(gb[gl == c], gl[gl == c])], [(db[dl == c], ds[dl == c])], at_50, (0.0, np.inf)
            )
            for (gb, gl, _), (db, dl, ds) in zip(truths, preds, strict=True)
        ]
        for c in range(num_classes)
    ]
    rng = np.random.default_rng(seed)
    n, values = len(truths), []
    for _ in range(n_resamples):
        pick = rng.integers(0, n, n)
        aps = []
        for per_page in matched:
            parts = [per_page[i] for i in pick]
            ap = _class_ap(
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts], axis=1),
                sum(p[2] for p in parts),
            )
            if ap is not None:
                aps.append(float(ap[0]))
        if aps:
            values.append(float(np.mean(aps)))
    return values

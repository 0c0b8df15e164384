"""What the pages of a detection project show: boxes per class against the class targets
(from the ground truth of labeled pages), the boxes to draw on each page of the gallery (true
and predicted), and the latest model's holdout mAP@0.5, overall and per class.

A detection page's ground truth has no class: its boxes do (`GroundTruth.answer`), so the
counts here read the answers, page by page, instead of grouping on `label_class`."""

from __future__ import annotations

from collections import Counter

from loupe.datasets.models import Item, Split
from loupe.labeling.models import GroundTruth
from loupe.learning.models import ModelVersion, Prediction
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes
from loupe.tasktypes.object_detection import OBJECT_DETECTION, answer_boxes, box_threshold

_CHUNK = 500


def is_detection_project(project: Project) -> bool:
    return project.task_type == OBJECT_DETECTION


def detection_box_counts(*, project: Project) -> dict:
    """Per class, the boxes on labeled pages (train and holdout) against its target.

    Pages waiting for a reviewer (annotators disagreed) are left out, as the exports leave
    them out: their boxes are not decided yet. A box of a label the project no longer lists
    is counted in a row of its own, without a target, so the totals stay the boxes drawn.
    """
    counts: dict[str, Counter] = {}
    pages = Counter()
    truths = GroundTruth.objects.filter(
        project=project, needs_review=False, item__split__in=[Split.TRAIN, Split.HOLDOUT]
    ).values_list("answer", "item__split")
    for answer, split in truths.iterator(chunk_size=_CHUNK):
        pages[split] += 1
        for box in answer_boxes(answer):
            counts.setdefault(box.label, Counter())[split] += 1
    rows = []
    known = set()
    for c in project_classes(project=project):
        known.add(c.name)
        rows.append(_count_row(c.name, counts.get(c.name, Counter()), c.target_count))
    for name in sorted(set(counts) - known):
        rows.append(_count_row(name, counts[name], None))
    train = sum(r["train"] for r in rows)
    for r in rows:
        r["train_share"] = r["train"] / train if train else None
    present = sorted((r for r in rows if r["train"]), key=lambda r: -r["train"])
    return {
        "classes": rows,
        "pages": {"train": pages[Split.TRAIN], "holdout": pages[Split.HOLDOUT]},
        "train_boxes": train,
        # Training boxes of the commonest class per box of the rarest one that has any.
        "imbalance": {
            "ratio": present[0]["train"] / present[-1]["train"],
            "majority": present[0]["name"],
            "minority": present[-1]["name"],
        }
        if present
        else None,
        "empty_classes": [r["name"] for r in rows if not r["train"]],
        "boxes": sum(r["boxes"] for r in rows),
        "targets_met": sum(1 for r in rows if r["target"] and r["remaining"] == 0),
        "classes_with_target": sum(1 for r in rows if r["target"]),
    }


def _count_row(name: str, by_split: Counter, target: int | None) -> dict:
    boxes = by_split[Split.TRAIN] + by_split[Split.HOLDOUT]
    return {
        "name": name,
        "train": by_split[Split.TRAIN],
        "holdout": by_split[Split.HOLDOUT],
        "boxes": boxes,
        "target": target,
        "progress": min(1.0, boxes / target) if target else None,
        "remaining": max(0, target - boxes) if target else None,
    }


def page_boxes(*, project: Project, items: list[Item]) -> dict[int, dict]:
    """For each page: its size, its true boxes (from the ground truth, once decided) and the
    boxes of its latest prediction with class name and score, as the gallery draws them
    (those its version shows: a score of at least its `box_threshold`).
    Two queries for all the pages."""
    ids = [item.pk for item in items]
    out = {
        item.pk: {"width": item.width, "height": item.height, "truth": [], "predicted": []}
        for item in items
    }
    truths = GroundTruth.objects.filter(project=project, item_id__in=ids).values_list(
        "item_id", "answer"
    )
    for item_id, answer in truths:
        out[item_id]["truth"] = [
            {"x": b.x, "y": b.y, "w": b.w, "h": b.h, "bottom": b.y + b.h, "label": b.label}
            for b in answer_boxes(answer)
        ]
    predictions = (
        Prediction.objects.filter(item_id__in=ids, boxes__isnull=False)
        .select_related("model_version")
        .order_by("item_id", "-model_version__version")
    )
    seen = set()
    for p in predictions:
        if p.item_id in seen:
            continue
        seen.add(p.item_id)
        names = p.model_version.class_names
        shown = box_threshold(p.model_version.metrics)
        out[p.item_id]["version"] = p.model_version.version
        out[p.item_id]["box_threshold"] = shown
        out[p.item_id]["predicted"] = [
            {
                "x": x,
                "y": y,
                "w": w,
                "h": h,
                "bottom": y + h,
                "label": names[int(c)] if 0 <= int(c) < len(names) else "?",
                "score": score,
            }
            for x, y, w, h, c, score in p.boxes or []
            if score >= shown
        ]
    return out


def detection_holdout(*, project: Project) -> dict | None:
    """The latest model version's holdout figures: mAP@0.5 with its 95% interval over pages,
    COCO mAP, AP of small objects, what the holdout is, and per class AP@0.5 with its
    support (true boxes of the class in the holdout). None before a version has them."""
    version = (
        ModelVersion.objects.filter(project=project, metrics__has_key="map50")
        .order_by("-version")
        .first()
    )
    if version is None:
        return None
    metrics = version.metrics
    interval = (metrics.get("intervals") or {}).get("map50")
    return {
        "version": version.version,
        "labels_used": version.labels_used,
        "map50": metrics.get("map50"),
        "map50_interval": interval if interval and None not in interval else None,
        "map": metrics.get("map"),
        "ap_small": metrics.get("ap_small"),
        "holdout": metrics.get("holdout", ""),
        "n_pages": metrics.get("n_pages", 0),
        "n_boxes": metrics.get("n_boxes", 0),
        "train_map50": (version.baseline_metrics or {}).get("map50"),
        "per_class": [
            {
                "class": row["class"],
                "ap50": row.get("ap50"),
                "support": row.get("support", 0),
                "predicted": row.get("predicted", 0),
            }
            for row in metrics.get("per_class", [])
        ],
        "confusions": metrics.get("confusions", [])[:5],
    }

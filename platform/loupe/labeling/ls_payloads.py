"""Label Studio's data shapes, without the SDK: labeling configs, task payloads, webhooks.

Everything here is pure (dicts and dataclasses in and out) so that the webhook endpoint and
the tests can use it without a server. `adapter.py` is the only module that talks to Label
Studio; it builds on these functions. Payload shapes were checked against Label Studio 1.23.2
(see docs/label-studio.md).
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

# Names inside the labeling config; results and predictions refer to them.
IMAGE_FIELD = "image"
CONTROL_NAME = "label"
REASON_FIELD = "loupe_reason"
ITEM_ID_FIELD = "loupe_item_id"
ROUND_ID_FIELD = "loupe_round_id"
MODEL_VERSION_FIELD = "loupe_model_version"
# Why the model sees a pick the way it does: the URL of its saliency overlay, its nearest
# labeled items (item id, class, image URL), and both drawn as HTML for the labeling view.
SALIENCY_FIELD = "loupe_saliency"
NEIGHBOURS_FIELD = "loupe_neighbours"
EXPLANATION_FIELD = "loupe_explanation"
# The model version every Loupe pre-annotation carries in Label Studio. Label Studio
# pre-annotates a task only with predictions of the project's one selected model version, so
# a name per Loupe version would hide the older predictions of open tasks after a retrain.
# The Loupe version that picked a task is in its data (MODEL_VERSION_FIELD).
PREDICTION_MODEL_VERSION = "loupe"

# Task types as Loupe's projects app names them.
IMAGE_CLASSIFICATION = "image_classification"
IMAGE_MULTI_LABEL = "image_multi_label"
OBJECT_DETECTION = "object_detection"

# The webhook actions Loupe subscribes to.
ANNOTATION_CREATED = "ANNOTATION_CREATED"
ANNOTATIONS_CREATED = "ANNOTATIONS_CREATED"
ANNOTATION_UPDATED = "ANNOTATION_UPDATED"
ANNOTATIONS_DELETED = "ANNOTATIONS_DELETED"
TASKS_DELETED = "TASKS_DELETED"
WEBHOOK_ACTIONS = (
    ANNOTATION_CREATED,
    ANNOTATIONS_CREATED,
    ANNOTATION_UPDATED,
    ANNOTATIONS_DELETED,
    TASKS_DELETED,
)


class LabelStudioError(Exception):
    """Label Studio refused a request (bad config, unknown project, ...)."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None):
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class LabelStudioUnavailable(LabelStudioError):
    """Label Studio could not be reached (refused, timed out, 502/503/504): retry later."""


class MalformedWebhook(ValueError):
    """A webhook body that is not a Label Studio event Loupe can read."""


@dataclass(frozen=True)
class PushPrediction:
    """A model's pre-annotation: `result` in Label Studio's format (see `choices_result`)."""

    result: list[dict]
    score: float
    model_version: str


@dataclass(frozen=True)
class PushNeighbour:
    """A labeled item near the one to label, in the model's embedding."""

    item_id: int
    label: str
    image: str


@dataclass(frozen=True)
class PushTask:
    """One item to label in one selection round; `image` is a URL Label Studio can load."""

    item_id: int
    round_id: int
    image: str
    reason: str = ""
    prediction: PushPrediction | None = None
    # The Loupe model version that picked the item ("" for a cold start).
    model_version: str = ""
    # The URL of the saliency overlay ("" when there is none) and the class it explains.
    saliency: str = ""
    explained_class: str = ""
    neighbours: tuple[PushNeighbour, ...] = ()
    # More task data naming the item's files, as (field, URL), for task types whose task
    # shows more than `image` (the second image of a pair).
    extra_data: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AnnotationRecord:
    """One annotation as Loupe needs it, from a webhook or from reconciliation."""

    id: int
    task_id: int
    item_id: int | None
    round_id: int | None
    classes: list[str]
    result: list[dict]
    completed_by: int | None
    completed_by_email: str | None
    lead_time: float | None
    was_cancelled: bool
    ground_truth: bool
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class WebhookEvent:
    """What one webhook asks Loupe to apply; actions Loupe does not use carry no changes."""

    action: str
    project_id: int | None
    annotations: list[AnnotationRecord] = field(default_factory=list)
    deleted_annotation_ids: list[int] = field(default_factory=list)
    deleted_task_ids: list[int] = field(default_factory=list)


# The image is shown at most this large (CSS pixels), beside the choices, so that both fit
# a laptop screen; zoom (wheel or toolbar) shows details.
IMAGE_DISPLAY_PX = 512
# A detection page is shown larger: its objects are a few pixels (zoom shows them larger).
DETECTION_DISPLAY_PX = 960
# Images no larger than this are drawn with crisp pixels when enlarged, not blurred.
SMALL_IMAGE_PX = 256


def labeling_config(
    task_type: str, classes: list[str], guidelines: str = "", *, image_px: int | None = None
) -> str:
    """The labeling config XML for a task type and its classes.

    The image (task data `$image`) sits on the left at a sensible size, at most
    IMAGE_DISPLAY_PX (DETECTION_DISPLAY_PX for a detection page), and the choices on the
    right, in view without scrolling; below them,
    why Loupe picked the item (`$loupe_reason`), then what the model looked at and the
    labeled items it resembles (`$loupe_explanation`, HTML that is empty when there is
    nothing to show), and the guidelines in a collapsed panel, one click away on every task
    instead of a pop-up. `image_px`, the largest side of the
    project's images, turns smoothing off for small images, which would blur when enlarged.
    """
    if not classes:
        raise ValueError("a labeling config needs at least one class")
    if len(set(classes)) != len(classes):
        raise ValueError("class names must be unique")
    view = ET.Element(
        "View", style="display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start"
    )
    shown = DETECTION_DISPLAY_PX if task_type == OBJECT_DETECTION else IMAGE_DISPLAY_PX
    left = ET.SubElement(view, "View", style=f"flex: 0 1 {shown}px; min-width: 240px")
    image = {
        "name": IMAGE_FIELD,
        "value": f"${IMAGE_FIELD}",
        "width": "100%",
        "maxWidth": f"{shown}px",
        "maxHeight": f"{shown}px",
        "zoom": "true",
        "zoomControl": "true",
    }
    if image_px is not None and image_px <= SMALL_IMAGE_PX:
        image["smoothing"] = "false"
    ET.SubElement(left, "Image", image)
    right = ET.SubElement(view, "View", style="flex: 1 1 240px; min-width: 220px")
    if task_type in (IMAGE_CLASSIFICATION, IMAGE_MULTI_LABEL):
        choice = "single" if task_type == IMAGE_CLASSIFICATION else "multiple"
        control = ET.SubElement(
            right,
            "Choices",
            name=CONTROL_NAME,
            toName=IMAGE_FIELD,
            choice=choice,
            showInline="false",
            required="true",
        )
        for name in classes:
            ET.SubElement(control, "Choice", value=name)
    elif task_type == OBJECT_DETECTION:
        control = ET.SubElement(right, "RectangleLabels", name=CONTROL_NAME, toName=IMAGE_FIELD)
        for name in classes:
            ET.SubElement(control, "Label", value=name)
    else:
        raise ValueError(f"unknown task type {task_type!r}")
    ET.SubElement(right, "Header", value="Why Loupe picked this image", size="6")
    ET.SubElement(right, "Text", name=REASON_FIELD, value=f"${REASON_FIELD}")
    # HyperText, not a second Image: an Image without a loadable URL (a cold-start pick, a
    # task pushed before explanations existed) shows an error box; empty HTML shows nothing.
    ET.SubElement(
        right, "HyperText", name=EXPLANATION_FIELD, value=f"${EXPLANATION_FIELD}", inline="true"
    )
    _guidelines_panel(right, guidelines)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


# Pair verification: the second image of a pair, and the answers an expert may give.
SECOND_IMAGE_FIELD = "image2"
PAIR_SAME, PAIR_DIFFERENT, PAIR_CANT_TELL = "same", "different", "can't tell"
PAIR_DISPLAY_PX = 320


def pair_labeling_config(guidelines: str = "", *, image_px: int | None = None) -> str:
    """The labeling config of a pair: its two images side by side at the same size
    (`$image`, `$image2`), then "same / different / can't tell" (a single choice, required),
    why Loupe picked the pair and the guidelines in a collapsed panel. "Can't tell" is an
    answer, not a class: it counts as an annotator having looked, and carries no vote."""
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Do these two images show the same person?", size="5")
    images = ET.SubElement(
        view, "View", style="display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start"
    )
    for name, caption in ((IMAGE_FIELD, "left"), (SECOND_IMAGE_FIELD, "right")):
        column = ET.SubElement(images, "View", style=f"flex: 0 1 {PAIR_DISPLAY_PX}px")
        attributes = {
            "name": name,
            "value": f"${name}",
            "width": "100%",
            "maxWidth": f"{PAIR_DISPLAY_PX}px",
            "maxHeight": f"{PAIR_DISPLAY_PX}px",
            "zoom": "true",
        }
        if image_px is not None and image_px <= SMALL_IMAGE_PX:
            attributes["smoothing"] = "false"
        ET.SubElement(column, "Image", attributes)
        ET.SubElement(column, "Header", value=caption, size="6")
    control = ET.SubElement(
        view,
        "Choices",
        name=CONTROL_NAME,
        toName=IMAGE_FIELD,
        choice="single",
        showInline="true",
        required="true",
    )
    for name in (PAIR_SAME, PAIR_DIFFERENT, PAIR_CANT_TELL):
        ET.SubElement(control, "Choice", value=name)
    ET.SubElement(view, "Header", value="Why Loupe picked this pair", size="6")
    ET.SubElement(view, "Text", name=REASON_FIELD, value=f"${REASON_FIELD}")
    _guidelines_panel(view, guidelines)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


def _guidelines_panel(parent: ET.Element, guidelines: str) -> None:
    """The guidelines, a paragraph a line, in a collapsed panel (nothing without any)."""
    paragraphs = _paragraphs(guidelines)
    if paragraphs:
        panel = ET.SubElement(ET.SubElement(parent, "Collapse"), "Panel", value="Guidelines")
        for paragraph in paragraphs:
            ET.SubElement(panel, "Header", value=paragraph, size="6")


def _paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in text.split("\n\n") if block.strip()]


def choices_result(classes: list[str]) -> list[dict]:
    """A classification result (prediction or annotation) choosing `classes`."""
    return [
        {
            "from_name": CONTROL_NAME,
            "to_name": IMAGE_FIELD,
            "type": "choices",
            "value": {"choices": list(classes)},
        }
    ]


@dataclass(frozen=True)
class Box:
    """A box in image pixels: top-left corner, width and height, its class, and the
    model's score for a predicted box (None for an expert's)."""

    x: float
    y: float
    width: float
    height: float
    label: str
    score: float | None = None


def rectangles_result(boxes: list[Box], *, image_width: int, image_height: int) -> list[dict]:
    """A RectangleLabels result (prediction or annotation): one region per box, in the
    percent coordinates Label Studio stores, with the image's size in pixels and, for a
    predicted box, its score."""
    if image_width <= 0 or image_height <= 0:
        raise ValueError("the image needs a positive width and height")
    regions = []
    for box in boxes:
        region = {
            "from_name": CONTROL_NAME,
            "to_name": IMAGE_FIELD,
            "type": "rectanglelabels",
            "original_width": int(image_width),
            "original_height": int(image_height),
            "image_rotation": 0,
            "value": {
                "x": 100.0 * box.x / image_width,
                "y": 100.0 * box.y / image_height,
                "width": 100.0 * box.width / image_width,
                "height": 100.0 * box.height / image_height,
                "rotation": 0,
                "rectanglelabels": [box.label],
            },
        }
        if box.score is not None:
            region["score"] = round(float(box.score), 4)
        regions.append(region)
    return regions


def result_boxes(result: list[dict]) -> list[Box]:
    """The boxes of a RectangleLabels result, back in pixels of the original image (its
    `original_width` / `original_height`). A region without a label or a size, or of
    another control, is left out; a rotated box becomes the upright box around it."""
    import math

    boxes = []
    for region in result or []:
        if not isinstance(region, dict) or region.get("from_name") != CONTROL_NAME:
            continue
        value = region.get("value") or {}
        labels = value.get("rectanglelabels") or []
        width, height = region.get("original_width"), region.get("original_height")
        try:
            x, y = float(value["x"]), float(value["y"])
            w, h = float(value["width"]), float(value["height"])
            width, height = float(width), float(height)
        except (KeyError, TypeError, ValueError):
            continue
        if not labels or w <= 0 or h <= 0 or width <= 0 or height <= 0:
            continue
        x, y, w, h = x * width / 100, y * height / 100, w * width / 100, h * height / 100
        angle = math.radians(float(value.get("rotation") or 0.0))
        if angle:
            # Label Studio rotates around the top-left corner.
            corners = [(0, 0), (w, 0), (0, h), (w, h)]
            xs = [x + cx * math.cos(angle) - cy * math.sin(angle) for cx, cy in corners]
            ys = [y + cx * math.sin(angle) + cy * math.cos(angle) for cx, cy in corners]
            x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        score = region.get("score")
        boxes.append(Box(x, y, w, h, str(labels[0]), None if score is None else float(score)))
    return boxes


def local_file_url(relative_path: str) -> str:
    """How a task refers to a file under Label Studio's LOCAL_FILES_DOCUMENT_ROOT."""
    return "/data/local-files/?d=" + quote(relative_path.lstrip("/"), safe="/")


# The overlay beside the choices, and the neighbours' thumbnails, in CSS pixels.
SALIENCY_DISPLAY_PX = 200
NEIGHBOUR_DISPLAY_PX = 72
_SECTION = "font-weight: 600; margin: 12px 0 4px"


def explanation_html(task: PushTask) -> str:
    """What the model looked at and which labeled items the pick resembles, as HTML for the
    labeling view; "" when the task has neither. Class names are escaped: people type them."""
    parts = []
    if task.saliency:
        looked_at = "What the model looked at"
        if task.explained_class:
            looked_at += f" to say {task.explained_class}"
        parts.append(
            f'<div style="{_SECTION}">{html.escape(looked_at)}</div>'
            f'<img src="{html.escape(task.saliency)}" alt="saliency overlay"'
            f' style="max-width: {SALIENCY_DISPLAY_PX}px; max-height: {SALIENCY_DISPLAY_PX}px;'
            ' display: block"/>'
            '<div style="font-size: 12px; color: #666">red: what counted most for that class;'
            " blue: little</div>"
        )
    if task.neighbours:
        figures = "".join(
            '<figure style="margin: 0; text-align: center">'
            f'<img src="{html.escape(n.image)}" alt="item {n.item_id}"'
            f' style="width: {NEIGHBOUR_DISPLAY_PX}px; height: {NEIGHBOUR_DISPLAY_PX}px;'
            ' object-fit: cover; display: block"/>'
            f'<figcaption style="font-size: 12px">{html.escape(n.label)}'
            f' <span style="color: #666">#{n.item_id}</span></figcaption></figure>'
            for n in task.neighbours
        )
        parts.append(
            f'<div style="{_SECTION}">Looks like these labeled items</div>'
            f'<div style="display: flex; gap: 8px; flex-wrap: wrap">{figures}</div>'
        )
    return f"<div>{''.join(parts)}</div>" if parts else ""


def task_payload(task: PushTask) -> dict:
    """One task in the body of the bulk import endpoint."""
    payload: dict[str, Any] = {
        "data": {
            IMAGE_FIELD: task.image,
            REASON_FIELD: task.reason,
            ITEM_ID_FIELD: task.item_id,
            ROUND_ID_FIELD: task.round_id,
            SALIENCY_FIELD: task.saliency,
            NEIGHBOURS_FIELD: [
                {"item_id": n.item_id, "label": n.label, "image": n.image} for n in task.neighbours
            ],
            EXPLANATION_FIELD: explanation_html(task),
        }
    }
    payload["data"].update(dict(task.extra_data))
    if task.model_version:
        payload["data"][MODEL_VERSION_FIELD] = task.model_version
    if task.prediction is not None:
        payload["predictions"] = [
            {
                "result": task.prediction.result,
                "score": task.prediction.score,
                "model_version": task.prediction.model_version,
            }
        ]
    return payload


def task_url(base_url: str, project_id: int, task_id: int) -> str:
    """Deep link that opens one task in Label Studio's labeling view."""
    return f"{base_url.rstrip('/')}/projects/{project_id}/data/?task={task_id}"


def label_stream_url(base_url: str, project_id: int) -> str:
    """Deep link to "Label": Label Studio serves the project's next task, in task order."""
    return f"{base_url.rstrip('/')}/projects/{project_id}/data?labeling=1"


def chosen_classes(result: list[dict]) -> list[str]:
    """Class names an annotation result chose, in order, each once."""
    chosen: list[str] = []
    for region in result or []:
        if not isinstance(region, dict) or region.get("from_name") != CONTROL_NAME:
            continue
        value = region.get("value") or {}
        for name in value.get("choices") or value.get("rectanglelabels") or []:
            if name not in chosen:
                chosen.append(name)
    return chosen


def annotation_record(
    annotation: dict, task: dict | None = None, emails: dict[int, str] | None = None
) -> AnnotationRecord:
    """Read one annotation dict (webhook or task listing) with its task's data, if known."""
    if not isinstance(annotation, dict):
        raise MalformedWebhook("annotation is not an object")
    try:
        annotation_id = int(annotation["id"])
        task_id = int(annotation.get("task") or (task or {})["id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedWebhook(f"annotation without id or task: {exc}") from exc
    result = annotation.get("result") or []
    if not isinstance(result, list):
        raise MalformedWebhook(f"annotation {annotation_id}: result is not a list")
    data = (task or {}).get("data") or {}
    completed_by = _user_id(annotation.get("completed_by"))
    return AnnotationRecord(
        id=annotation_id,
        task_id=task_id,
        item_id=_int_or_none(data.get(ITEM_ID_FIELD)),
        round_id=_int_or_none(data.get(ROUND_ID_FIELD)),
        classes=chosen_classes(result),
        result=result,
        completed_by=completed_by,
        completed_by_email=(emails or {}).get(completed_by) if completed_by else None,
        lead_time=annotation.get("lead_time"),
        was_cancelled=bool(annotation.get("was_cancelled")),
        ground_truth=bool(annotation.get("ground_truth")),
        created_at=_datetime(annotation.get("created_at")),
        updated_at=_datetime(annotation.get("updated_at")),
    )


def parse_webhook(payload: Any) -> WebhookEvent:
    """Read a Label Studio webhook body; raises `MalformedWebhook` when it is not one."""
    if not isinstance(payload, dict):
        raise MalformedWebhook("webhook body is not a JSON object")
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise MalformedWebhook("webhook body has no action")
    project = payload.get("project")
    project_id = _int_or_none(project.get("id")) if isinstance(project, dict) else None
    if action in (ANNOTATION_CREATED, ANNOTATION_UPDATED, ANNOTATIONS_CREATED):
        annotations = _as_list(payload.get("annotation"), "annotation")
        tasks = {t.get("id"): t for t in _as_list(payload.get("task"), "task", required=False)}
        records = [annotation_record(a, tasks.get(_task_id(a))) for a in annotations]
        return WebhookEvent(action=action, project_id=project_id, annotations=records)
    if action == ANNOTATIONS_DELETED:
        ids = _ids(payload.get("annotations"), "annotations")
        return WebhookEvent(action=action, project_id=project_id, deleted_annotation_ids=ids)
    if action == TASKS_DELETED:
        ids = _ids(payload.get("tasks"), "tasks")
        return WebhookEvent(action=action, project_id=project_id, deleted_task_ids=ids)
    return WebhookEvent(action=action, project_id=project_id)


def _as_list(value: Any, key: str, *, required: bool = True) -> list[dict]:
    # Single-object actions send an object, bulk actions a list of them.
    if value is None and not required:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise MalformedWebhook(f"webhook field {key!r} is missing or not an object/list")


def _ids(value: Any, key: str) -> list[int]:
    try:
        return [int(v["id"]) for v in _as_list(value, key)]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedWebhook(f"webhook field {key!r} has an entry without an id") from exc


def _task_id(annotation: dict) -> Any:
    return annotation.get("task")


def _user_id(value: Any) -> int | None:
    # Listings send the user id; some serializers nest the user as an object.
    if isinstance(value, dict):
        value = value.get("id")
    return _int_or_none(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedWebhook(f"not an ISO date-time: {value!r}") from exc

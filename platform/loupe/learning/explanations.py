"""Why the model sees a pick the way it does, for the people who label it: a Grad-CAM
overlay of the image regions that raised its predicted class, and the labeled items nearest
to it in the model version's embedding, with their classes ("looks like these three labeled
scratches"). Computed for a round's picks only, never for the whole pool."""

import io
import logging

import numpy as np
from django.core.files.storage import default_storage

from loupe.datasets.storage import file_replace
from loupe.labeling.models import GroundTruth
from loupe.learning.data import item_tensors
from loupe.learning.models import ModelVersion, SelectionItem, SelectionRound
from loupe.tasktypes import task_type_of
from ml.artifacts import load

logger = logging.getLogger(__name__)

# Overlays are drawn on the image with its longer side at most this many pixels: enough to
# see the region beside the labeling view's image, small enough to stay a small PNG.
OVERLAY_PX = 256
NEIGHBOURS = 3
# Neighbours are looked for among more candidates than shown: an item the version trained
# on may have lost its label since (deleted in Label Studio, or a tie under review).
NEIGHBOUR_CANDIDATES = 4 * NEIGHBOURS


def saliency_name(*, version: ModelVersion, item_id: int) -> str:
    """Where a pick's overlay lives in media storage: one per version and item, so a
    repeated explanation rewrites the same file with the same pixels."""
    return f"explain/{version.project.slug}/v{version.version}/item-{item_id}.png"


def selection_round_explain(*, selection_round: SelectionRound) -> int:
    """Gives each pick of the round its saliency overlay and its nearest labeled items;
    returns how many picks got an overlay. A cold start (no model) has nothing to explain.

    Safe to run twice: the overlays are deterministic and rewritten in place. A pick whose
    image cannot be read keeps no overlay, and unreadable training embeddings leave the
    neighbours out; the other picks and the other half are explained all the same."""
    from ml.explain import grad_cam
    from ml.scoring import score

    version = selection_round.model_version
    if version is None or not task_type_of(selection_round.project).explains:
        return 0
    picks = list(
        SelectionItem.objects.filter(selection_round=selection_round)
        .select_related("item", "predicted_class")
        .order_by("rank")
    )
    if not picks:
        return 0
    from loupe.learning.scoring import version_model

    picks, x = _model_inputs(picks, version)
    if not picks:
        return 0
    model = version_model(model_version=version)
    output = score(model, x)
    by_name = {name: i for i, name in enumerate(version.class_names)}
    classes = np.array(
        [by_name.get(p.predicted_class.name if p.predicted_class else None, -1) for p in picks]
    )
    # The pick's recorded prediction is what the expert sees; the model's own top class
    # stands in where the class was renamed or removed since.
    classes = np.where(classes >= 0, classes, output.probs.argmax(axis=1))
    heat = grad_cam(model, x, classes).numpy()
    explained = 0
    for pick, heat_map in zip(picks, heat, strict=True):
        name = _overlay_store(version, pick, heat_map)
        pick.saliency = name or ""
        explained += bool(name)
    neighbours = _neighbours(version, output.embeddings)
    if neighbours is not None:
        for pick, near in zip(picks, neighbours, strict=True):
            pick.neighbours = near
    SelectionItem.objects.bulk_update(picks, ["saliency", "neighbours"], 100)
    logger.info("explained %d of %d picks of %s", explained, len(picks), selection_round)
    return explained


def _model_inputs(picks: list[SelectionItem], version: ModelVersion):
    """(picks, pixels) of the picks whose image the model can read, as scoring read them
    (through the pixel cache); one unreadable image leaves out only its own pick."""
    import torch

    def tensors(chosen):
        return item_tensors(
            [p.item.file.name for p in chosen],
            image_size=version.image_size,
            cache_keys=[p.item.sha256 for p in chosen],
        )

    try:
        return picks, tensors(picks)
    except OSError:
        readable, rows = [], []
        for pick in picks:
            try:
                rows.append(tensors([pick]))
            except OSError as exc:
                logger.warning("item %s is not explained: %s", pick.item_id, exc)
                continue
            readable.append(pick)
        return readable, torch.cat(rows) if rows else None


def _overlay_store(version: ModelVersion, pick: SelectionItem, heat_map: np.ndarray) -> str:
    """The overlay of one pick as a PNG in media storage; its name, or "" when the image
    could not be read."""
    from PIL import Image

    from ml.explain import display_pixels, heat_overlay

    try:
        pixels = display_pixels(default_storage.path(pick.item.file.name), max_side=OVERLAY_PX)
    except OSError as exc:
        logger.warning("no overlay for item %s: %s", pick.item_id, exc)
        return ""
    buffer = io.BytesIO()
    Image.fromarray(heat_overlay(pixels, heat_map)).save(buffer, format="PNG", optimize=True)
    name = saliency_name(version=version, item_id=pick.item_id)
    file_replace(name=name, content=buffer.getvalue())
    return name


def _neighbours(version: ModelVersion, embeddings: np.ndarray) -> list[list[dict]] | None:
    """For each embedding, the NEIGHBOURS nearest items the version trained on that still
    have a usable label, with their classes; None when the training embeddings are missing
    or unreadable."""
    from ml.explain import nearest_labeled

    if not version.train_embeddings:
        return None
    try:
        with default_storage.open(version.train_embeddings.name, "rb") as handle:
            stored = load(handle, require=("embeddings",))
        item_ids, trained = stored.item_ids, stored.embeddings
        indices, distances = nearest_labeled(embeddings, trained, k=NEIGHBOUR_CANDIDATES)
    except (OSError, KeyError, ValueError) as exc:
        logger.warning("no neighbours from v%s: %s", version.version, exc)
        return None
    labels = dict(
        GroundTruth.objects.filter(
            item_id__in={int(i) for i in item_ids[indices].ravel()},
            needs_review=False,
            label_class__isnull=False,
        ).values_list("item_id", "label_class__name")
    )
    out = []
    for row, dist in zip(indices, distances, strict=True):
        near = []
        for index, distance in zip(row, dist, strict=True):
            item_id = int(item_ids[index])
            if item_id in labels and len(near) < NEIGHBOURS:
                near.append(
                    {
                        "item_id": item_id,
                        "label": labels[item_id],
                        "distance": round(float(distance), 4),
                    }
                )
        out.append(near)
    return out


def pick_explanations(*, item_ids) -> dict[int, dict]:
    """For each item, the explanation of its latest pick: the pick's id (its overlay is
    served by id), whether it has an overlay, the class the overlay explains, and the
    nearest labeled items. One query for a page of items."""
    picks = (
        SelectionItem.objects.filter(item_id__in=list(item_ids))
        .select_related("predicted_class")
        .order_by("item_id", "-selection_round__number")
    )
    out: dict[int, dict] = {}
    for pick in picks:
        if pick.item_id in out:
            continue
        out[pick.item_id] = {
            "pick_id": pick.pk,
            "has_saliency": bool(pick.saliency),
            "explained_class": pick.predicted_class.name if pick.predicted_class else "",
            "neighbours": pick.neighbours,
        }
    return out


def pick_saliency_name(*, project, pick_id: int) -> str | None:
    """The media name of a pick's overlay, when the pick belongs to `project` and has one."""
    name = (
        SelectionItem.objects.filter(pk=pick_id, selection_round__project=project)
        .values_list("saliency", flat=True)
        .first()
    )
    return name or None

"""Why the model said what it said about one item: a Grad-CAM heat map of the image regions
that raised the score of a class, and the labeled items closest to it in the embedding.

Pure torch/numpy: the platform turns the heat maps into overlay images and the neighbours'
indices into item ids and classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ml.data import _open
from ml.device import pick_device


def last_conv_layer(model: nn.Module) -> nn.Conv2d:
    """The last ``Conv2d`` of ``model`` in registration order (for :class:`SmallCNN`, the
    convolution of its deepest block): the finest map that still sees whole defects."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional model; this one has no Conv2d layer")
    return convs[-1]


_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)


def cam_layer(model: nn.Module) -> nn.Module:
    """Where Grad-CAM reads activations by default: the activation function right after
    :func:`last_conv_layer` (the conv itself when none follows). After the non-linearity the
    maps are sharper: a synthetic defect stood out twice as clearly as on the raw conv output."""
    conv = last_conv_layer(model)
    modules = list(model.modules())
    after = modules[next(i for i, m in enumerate(modules) if m is conv) + 1 :]
    return next((m for m in after if isinstance(m, _ACTIVATIONS)), conv)


def _class_indices(class_index, n: int) -> torch.Tensor | None:
    if class_index is None:
        return None
    if isinstance(class_index, int | np.integer):
        return torch.full((n,), int(class_index), dtype=torch.long)
    indices = torch.as_tensor(np.asarray(class_index), dtype=torch.long).reshape(-1)
    if len(indices) != n:
        raise ValueError(f"{len(indices)} class indices for {n} images")
    return indices


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    class_index: int | Sequence[int] | np.ndarray | torch.Tensor | None,
    *,
    layer: nn.Module | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Grad-CAM heat maps ``(n, h, w)`` in [0, 1] for images ``x (n, c, h, w)``.

    For each image, the activations of ``layer`` (default: :func:`cam_layer`, the
    activation of the last convolution) are
    weighted by the spatial mean of the gradient of the class's logit with respect to them
    (Selvaraju et al., 2017); the positive part of the weighted sum, upsampled bilinearly to
    the image size and divided by its maximum, is the map (all zeros where nothing raises the
    class). ``class_index`` is one class for every image, one per image, or ``None`` for each
    image's predicted class.

    The model runs in eval mode (batch norm frozen, no dropout), so the maps are
    deterministic; its mode is restored afterwards and its parameters' gradients are left
    untouched. Runs on the model's device (``device`` moves the model there first), CUDA or
    CPU through the same code; the maps come back on the CPU.
    """
    if x.ndim != 4:
        raise ValueError(f"expected images (n, c, h, w), got shape {tuple(x.shape)}")
    if device is not None:
        model = model.to(pick_device(device))
    target_layer = layer if layer is not None else cam_layer(model)
    run_on = next(model.parameters()).device
    indices = _class_indices(class_index, len(x))
    captured: list[torch.Tensor] = []
    handle = target_layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    was_training = model.training
    model.eval()
    maps = []
    try:
        for start in range(0, len(x), batch_size):
            captured.clear()
            # Gradients must reach the activations even when the weights are frozen.
            xb = x[start : start + batch_size].to(run_on).requires_grad_(True)
            with torch.enable_grad():
                logits = model(xb)
                if not captured:
                    raise ValueError("the chosen layer took no part in the forward pass")
                activations = captured[-1]
                chosen = (
                    logits.argmax(dim=1)
                    if indices is None
                    else indices[start : start + len(xb)].to(run_on)
                )
                if int(chosen.min()) < 0 or int(chosen.max()) >= logits.shape[1]:
                    raise ValueError(f"class index out of range for {logits.shape[1]} classes")
                # Batch norm is frozen, so each image's logit depends on its own activations
                # only: the gradient of the sum is every image's gradient at once.
                target = logits.gather(1, chosen[:, None]).sum()
                (grads,) = torch.autograd.grad(target, activations)
            weights = grads.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((weights * activations.detach()).sum(dim=1, keepdim=True))
            cam = F.interpolate(cam, size=xb.shape[-2:], mode="bilinear", align_corners=False)
            cam = cam[:, 0]
            peak = cam.amax(dim=(1, 2), keepdim=True)
            cam = torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
            maps.append(cam.clamp_(0.0, 1.0).cpu())
    finally:
        handle.remove()
        model.train(was_training)
    if not maps:
        return torch.zeros((0, *x.shape[-2:]), dtype=torch.float32)
    return torch.cat(maps)


# Colours of the heat scale, cold to hot: blue, yellow, red.
_HEAT_COLOURS = np.array([[0.0, 0.35, 1.0], [1.0, 0.9, 0.0], [1.0, 0.0, 0.0]], dtype=np.float32)


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """RGB colours ``(..., 3)`` in [0, 1] for heat values in [0, 1] (blue, yellow, red)."""
    t = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0) * (len(_HEAT_COLOURS) - 1)
    low = np.minimum(t.astype(np.int64), len(_HEAT_COLOURS) - 2)
    frac = (t - low)[..., None]
    return _HEAT_COLOURS[low] * (1.0 - frac) + _HEAT_COLOURS[low + 1] * frac


def heat_overlay(image: np.ndarray, heat: np.ndarray, *, strength: float = 0.6) -> np.ndarray:
    """The image ``(H, W, 3)`` uint8 with the heat map ``(h, w)`` laid over it in colour.

    The heat is resized to the image; each pixel takes the heat colour in proportion to its
    heat to the power 1.5 (at most ``strength``), so cold and lukewarm regions show the image
    nearly as it is and the hot ones glow.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    height, width = image.shape[:2]
    heat_map = torch.as_tensor(np.asarray(heat, dtype=np.float32))[None, None]
    heat_map = F.interpolate(heat_map, size=(height, width), mode="bilinear", align_corners=False)
    resized = heat_map[0, 0].clamp_(0.0, 1.0).numpy()
    weight = (strength * resized**1.5)[..., None]
    blended = image.astype(np.float32) * (1.0 - weight) + 255.0 * heat_colours(resized) * weight
    return np.clip(blended.round(), 0, 255).astype(np.uint8)


def display_pixels(path: str | Path, *, max_side: int = 256, min_side: int = 128) -> np.ndarray:
    """The image at ``path`` as uint8 RGB ``(H, W, 3)`` for an overlay to be drawn on.

    Decoded as the model's inputs are (EXIF orientation applied, 16-bit grayscale scaled),
    with the aspect kept: a larger image is shrunk to a longer side of ``max_side``, a small
    one enlarged by a whole factor with crisp pixels until its longer side reaches
    ``min_side`` (the heat then covers the pixels smoothly). A model input is the whole image
    rescaled, so a heat map covers exactly this picture."""
    image = _open(Path(path), "RGB")
    longer = max(image.size)
    if longer > max_side:
        image.thumbnail((max_side, max_side), Image.BILINEAR)
    elif longer < min_side:
        factor = -(-min_side // longer)
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    return np.asarray(image, dtype=np.uint8)


def nearest_labeled(
    queries: np.ndarray, labeled: np.ndarray, *, k: int = 3, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` labeled embeddings closest to each query, by cosine distance.

    ``queries (m, d)`` and ``labeled (n, d)``; returns ``(indices, distances)``, both
    ``(m, min(k, n))``, nearest first (ties by index, so the answer is deterministic).
    Queries are taken ``chunk`` at a time, so a large labeled set never needs an ``m x n``
    matrix at once.
    """
    queries = np.asarray(queries, dtype=np.float32)
    labeled = np.asarray(labeled, dtype=np.float32)
    if queries.ndim != 2 or labeled.ndim != 2:
        raise ValueError("queries and labeled embeddings must be 2-D arrays")
    if len(labeled) and queries.shape[1] != labeled.shape[1]:
        raise ValueError(
            f"queries have {queries.shape[1]} dimensions, labeled embeddings {labeled.shape[1]}"
        )
    take = min(k, len(labeled))
    indices = np.empty((len(queries), take), dtype=np.int64)
    distances = np.empty((len(queries), take), dtype=np.float32)
    if take == 0:
        return indices, distances

    def unit(rows: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.maximum(norms, 1e-12)

    reference = unit(labeled)
    for start in range(0, len(queries), chunk):
        distance = 1.0 - unit(queries[start : start + chunk]) @ reference.T
        order = np.argsort(distance, axis=1, kind="stable")[:, :take]
        indices[start : start + chunk] = order
        distances[start : start + chunk] = np.take_along_axis(distance, order, axis=1)
    return indices, np.clip(distances, 0.0, 2.0)

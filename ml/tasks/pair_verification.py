"""Pair verification: do two images show the same person (or part, or object)?

An item is a pair of images, ``x`` of shape ``(n, 2, C, H, W)``, labeled 1 (same) or 0
(different). The model is a small siamese CNN trained from scratch: one embedding network
applied to both members, L2-normalised embeddings, and a contrastive loss on their cosine
distance (same pairs pulled together, different pairs pushed beyond a margin). ``p(same)``
comes from a logistic fit of the label on the distance over the holdout pairs, stored with
the weights, so the threshold at ``p = 0.5`` is calibrated rather than guessed. Acquisition
does not need pairs to exist beforehand: :meth:`PairVerificationSpec.embed_images` embeds
single images, from which :mod:`ml.strategies.pairs` mines candidate pairs.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.device import pick_device
from ml.models import conv_backbone
from ml.pair_metrics import pair_metrics
from ml.tasks.base import Evaluation, Predictions, ProgressCallback, TaskSpec

PAIR_VERIFICATION = "pair_verification"


class EmbeddingNet(nn.Module):
    """Conv-BN-ReLU-MaxPool blocks, global average and max pooling, dropout and a linear
    projection to ``embedding_dim``; :meth:`embed` L2-normalises. The ``calibration``
    buffer holds ``(a, b)`` of ``p(same) = sigmoid(a + b * distance)``; its default puts
    ``p = 0.5`` at a cosine distance of 0.5 until a holdout fits it."""

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 48,
        width: int = 16,
        embedding_dim: int = 64,
        dropout: float = 0.2,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size, self.embedding_dim = (
            in_channels,
            image_size,
            embedding_dim,
        )
        fork = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
        with fork:
            if seed is not None:
                torch.manual_seed(seed)
            self.features, channels = conv_backbone(in_channels, image_size, width)
            self.projection = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(2 * channels, embedding_dim)
            )
        self.register_buffer("calibration", torch.tensor([2.5, -5.0]))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings ``(n, embedding_dim)`` of images ``(n, C, H, W)``."""
        f = self.features(x)
        pooled = torch.cat((f.mean(dim=(2, 3)), f.amax(dim=(2, 3))), dim=1)
        return F.normalize(self.projection(pooled), dim=1)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """Cosine distances ``(n,)`` of pairs ``(n, 2, C, H, W)``, in [0, 2]."""
        n = pairs.shape[0]
        e = self.embed(pairs.flatten(0, 1)).view(n, 2, -1)
        return pair_distance(e[:, 0], e[:, 1])


def pair_distance(a, b):
    """Cosine distance ``1 - cos`` of unit vectors, row by row (torch or numpy)."""
    return 1.0 - (a * b).sum(-1)


def contrastive_loss(distance: torch.Tensor, same: torch.Tensor, margin: float) -> torch.Tensor:
    """Same pairs pay their squared distance, different pairs the squared shortfall from
    ``margin``; the two kinds weigh equally however unbalanced the batch (random pairs are
    nearly all different)."""
    same = same.float()
    pos = (distance**2 * same).sum() / same.sum().clamp(min=1)
    neg = (F.relu(margin - distance) ** 2 * (1 - same)).sum() / (1 - same).sum().clamp(min=1)
    return pos + neg


def fit_calibration(
    distance, same, *, ridge: float = 1e-3, iterations: int = 50
) -> tuple[float, float]:
    """``(a, b)`` of the logistic ``p(same) = sigmoid(a + b * distance)`` by Newton's method
    with a little ridge on ``b``. ``b`` is kept negative (further apart is never more
    likely the same), so ``p`` ranks pairs as the distance does. With only one kind of pair
    the intercept alone is fitted (with a pseudo-count of the other kind)."""
    d = np.asarray(distance, dtype=np.float64).ravel()
    y = np.asarray(same, dtype=np.float64).ravel()
    if d.size == 0:
        return 2.5, -5.0
    if y.min() == y.max():
        rate = (y.sum() + 0.5) / (len(y) + 1.0)
        return float(np.log(rate / (1 - rate)) + 5.0 * d.mean()), -5.0
    # Standardise for a well-conditioned Newton step, then map back.
    mu, sd = d.mean(), d.std() + 1e-9
    z = (d - mu) / sd
    w = np.zeros(2)
    design = np.stack([np.ones_like(z), z], axis=1)
    penalty = np.diag([0.0, ridge * len(z)])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + penalty @ w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    b = w[1] / sd
    if b < -1e-3:
        return float(w[0] - b * mu), float(b)
    # No usable trend: the base rate, with a slight slope to keep the ranking by distance.
    b = -1e-3
    return float(np.log(y.mean() / (1 - y.mean())) - b * mu), b


def p_same(model: EmbeddingNet, distance: np.ndarray) -> np.ndarray:
    """Calibrated ``p(same)`` of distances, float64 (no saturation ties at float32)."""
    a, b = (float(v) for v in model.calibration.detach().cpu())
    return 1.0 / (1.0 + np.exp(-(a + b * np.asarray(distance, dtype=np.float64))))


def distance_threshold(model: EmbeddingNet) -> float:
    """The cosine distance at which ``p(same) = 0.5``."""
    a, b = (float(v) for v in model.calibration.detach().cpu())
    return -a / b


@dataclass
class PairTrainConfig:
    """How to train the siamese model. ``min_steps`` optimisation steps at least (more
    epochs for a small labeled set), ``margin`` the cosine distance different pairs are
    pushed beyond, ``augment`` flips, shifts and light changes per member image."""

    epochs: int = 20
    min_steps: int = 150
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    margin: float = 0.7
    augment: bool = True
    seed: int = 0
    device: str | None = None
    eval_batch_size: int = 256


def _pair_config(config) -> PairTrainConfig:
    """A PairTrainConfig as it is; from a classification ``TrainConfig`` (the platform's
    settings), its epochs, steps, batch size, learning rate, seed and device, with the
    pair defaults for the rest."""
    if config is None:
        return PairTrainConfig()
    if isinstance(config, PairTrainConfig):
        return config
    defaults = PairTrainConfig()
    return PairTrainConfig(
        epochs=int(getattr(config, "epochs", defaults.epochs)),
        min_steps=int(getattr(config, "min_steps", 0) or defaults.min_steps),
        batch_size=int(getattr(config, "batch_size", defaults.batch_size)),
        seed=int(getattr(config, "seed", defaults.seed)),
        device=getattr(config, "device", None),
    )


@dataclass
class PairTrainResult:
    """What training produced (the fields ``ml.training.TrainResult`` has that callers read)."""

    model: EmbeddingNet
    history: list[dict]
    device: str
    seconds: float
    class_weights: np.ndarray | None = None
    calibrated_on: str = "holdout"


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _as_pairs(x) -> torch.Tensor:
    x = torch.as_tensor(x) if not torch.is_tensor(x) else x
    if x.dim() != 5 or x.shape[1] != 2:
        raise ValueError(f"pairs must be (n, 2, C, H, W), got shape {tuple(x.shape)}")
    return x.float()


def _distances(model, pairs: torch.Tensor, device, batch_size: int, mc_samples: int = 0):
    """Distances ``(n,)`` and, with ``mc_samples``, MC-dropout draws ``(n, T)``."""
    model.to(device).eval()
    out, draws = [], []
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            xb = pairs[start : start + batch_size].to(device)
            n = xb.shape[0]
            flat = xb.flatten(0, 1)
            f = model.features(flat)
            pooled = torch.cat((f.mean(dim=(2, 3)), f.amax(dim=(2, 3))), dim=1)
            e = F.normalize(model.projection(pooled), dim=1).view(n, 2, -1)
            out.append(pair_distance(e[:, 0], e[:, 1]).float().cpu())
            if mc_samples:
                # Dropout sits before the projection only: re-running it samples the posterior.
                model.projection[0].train()
                stacked = (
                    pooled.unsqueeze(0)
                    .expand(mc_samples, *pooled.shape)
                    .reshape(-1, pooled.shape[1])
                )
                em = F.normalize(model.projection(stacked), dim=1).view(mc_samples, n, 2, -1)
                draws.append(pair_distance(em[:, :, 0], em[:, :, 1]).T.float().cpu())
                model.projection[0].eval()
    distance = torch.cat(out).numpy()
    return distance, (torch.cat(draws).numpy() if mc_samples else None)


class PairVerificationSpec(TaskSpec):
    """Pairs of images, same or different, from a siamese embedding and a calibrated
    threshold; the headline is the holdout pairs' ROC AUC."""

    name = PAIR_VERIFICATION
    headline_metric = "roc_auc"

    def build_model(
        self,
        kind: str = "siamese_cnn",
        *,
        num_classes: int = 2,
        image_size: int,
        seed=None,
        **options,
    ):
        """A fresh :class:`EmbeddingNet` (``kind="siamese_cnn"``); ``num_classes`` is the
        pair's two answers and changes nothing. ``options``: ``in_channels``, ``width``,
        ``embedding_dim``, ``dropout``."""
        if kind != "siamese_cnn":
            raise ValueError(f"unknown pair model {kind!r}; choose 'siamese_cnn'")
        return EmbeddingNet(image_size=image_size, seed=seed, **options)

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
    ):
        """Trains on pairs ``x (n, 2, C, H, W)`` labeled ``y (n,)`` (1 same, 0 different),
        then fits the calibration on ``val_x``/``val_y`` (on the training pairs when there
        is no holdout with both kinds). Deterministic by ``config.seed``."""
        from ml.augment import Augment

        config = _pair_config(config)
        started = time.perf_counter()
        pairs = _as_pairs(x)
        same = torch.as_tensor(np.asarray(y, dtype=np.int64))
        if len(pairs) != len(same):
            raise ValueError(f"{len(pairs)} pairs but {len(same)} labels")
        device = pick_device(config.device)
        model.to(device)
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        batches_per_epoch = max(1, math.ceil(len(pairs) / config.batch_size))
        epochs = max(config.epochs, math.ceil(config.min_steps / batches_per_epoch))
        total = epochs * batches_per_epoch
        augment = (
            Augment(rotate_degrees=8.0, shift_fraction=0.06, brightness=0.1, contrast=0.15)
            if config.augment
            else None
        )
        history: list[dict] = []
        step = 0
        generator = torch.Generator().manual_seed(config.seed)
        with _seeded(config.seed, device):
            for epoch in range(1, epochs + 1):
                model.train()
                order = torch.randperm(len(pairs), generator=generator)
                losses = []
                for batch in torch.split(order, config.batch_size):
                    if len(batch) < 2 and len(pairs) > 1:
                        continue  # batch norm needs two images of a kind; a pair has two
                    xb = pairs[batch]
                    if augment is not None:
                        xb = augment(xb.flatten(0, 1), generator=generator).view_as(xb)
                    for group in optimiser.param_groups:
                        group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * step / total))
                    loss = contrastive_loss(
                        model(xb.to(device)), same[batch].to(device), config.margin
                    )
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    step += 1
                    losses.append(float(loss.detach()))
                    if progress is not None:
                        progress(step, total, losses[-1])
                history.append({"epoch": epoch, "loss": float(np.mean(losses)) if losses else None})
        model.eval()
        calibrated_on = "holdout"
        if val_x is not None and val_y is not None and len(np.unique(np.asarray(val_y))) == 2:
            cal_x, cal_y = _as_pairs(val_x), np.asarray(val_y)
        else:
            cal_x, cal_y, calibrated_on = pairs, same.numpy(), "training pairs"
        distance, _ = _distances(model, cal_x, device, config.eval_batch_size)
        a, b = fit_calibration(distance, cal_y)
        model.calibration.copy_(torch.tensor([a, b], device=model.calibration.device))
        return PairTrainResult(
            model=model,
            history=history,
            device=str(device),
            seconds=time.perf_counter() - started,
            calibrated_on=calibrated_on,
        )

    def embed_images(self, model, images, *, batch_size: int = 256, device=None) -> np.ndarray:
        """Unit-length embeddings ``(n, d)`` of single images ``(n, C, H, W)``: what pair
        mining looks at."""
        device = pick_device(device)
        model.to(device).eval()
        images = torch.as_tensor(images).float()
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                out.append(model.embed(images[start : start + batch_size].to(device)).float().cpu())
        return torch.cat(out).numpy() if out else np.empty((0, model.embedding_dim), np.float32)

    def predict(
        self, model, x, *, batch_size: int = 256, mc_samples: int = 0, seed: int = 0
    ) -> Predictions:
        """For pairs ``(n, 2, C, H, W)``: ``scores`` p(same) ``(n,)``, ``probs`` ``(n, 2)``
        as (different, same), ``embeddings`` the two members' side by side ``(n, 2d)``,
        ``extras["distance"]`` and, with ``mc_samples=T``, ``mc_probs (T, n, 2)`` and
        ``extras["mc_distance"] (n, T)``."""
        pairs = _as_pairs(x)
        device = pick_device(None)
        with _seeded(seed, device):
            distance, draws = _distances(model, pairs, device, batch_size, mc_samples)
        n = len(pairs)
        members = self.embed_images(
            model, pairs.flatten(0, 1), batch_size=batch_size, device=device
        )
        p = p_same(model, distance)
        extras = {"distance": distance.astype(np.float32)}
        mc_probs = None
        if draws is not None:
            extras["mc_distance"] = draws.astype(np.float32)
            mc_p = p_same(model, draws).T  # (T, n)
            mc_probs = np.stack([1 - mc_p, mc_p], axis=-1).astype(np.float32)
        return Predictions(
            probs=np.stack([1 - p, p], axis=1),
            scores=p,
            embeddings=members.reshape(n, -1),
            mc_probs=mc_probs,
            extras=extras,
        )

    def evaluate(
        self, y_true, predictions: Predictions, *, class_names: list[str] | None = None
    ) -> Evaluation:
        """ROC AUC of p(same) on labeled pairs, with EER, TAR at FAR 1% and 0.1% and the
        operating point ``p >= 0.5`` (:func:`ml.pair_metrics.pair_metrics`)."""
        details = pair_metrics(y_true, predictions.scores, threshold=0.5)
        value = details["roc_auc"]
        return Evaluation(
            metric=self.headline_metric,
            value=float("nan") if value is None else value,
            per_class=[],
            details=details,
        )

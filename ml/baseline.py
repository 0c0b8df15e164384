"""The simple baseline always reported next to the CNN: a linear probe on embeddings.

Multinomial logistic regression with L2 regularisation and class weights, fitted full-batch
with L-BFGS in float64 on the CPU (no scikit-learn): deterministic, and fast for the few
thousand labeled embeddings an active-learning project holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ml.losses import class_weights as compute_class_weights


@dataclass
class LinearProbe:
    """A fitted probe: standardisation (``mean``, ``scale``) then ``softmax(X @ W + b)``."""

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    class_weights: np.ndarray

    @property
    def num_classes(self) -> int:
        return self.weight.shape[1]

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(n, k)``."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return z @ self.weight + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, k)`` as float32."""
        logits = self.decision_function(x)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Most probable class per row."""
        return self.decision_function(x).argmax(axis=1)


def fit_linear_probe(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    class_weighting: str = "inverse",
    l2: float = 1e-3,
    max_iter: int = 200,
    num_classes: int | None = None,
    seed: int = 0,
) -> LinearProbe:
    """Fit a class-weighted logistic-regression probe on ``embeddings (n, d)``.

    ``l2`` penalises the weights (on standardised features) to keep the probe stable with
    few labels. ``num_classes`` leaves room for classes not labeled yet (they get a large
    negative bias). The problem is convex and solved from zeros, so the result does not
    depend on ``seed``; it is accepted for a uniform interface.
    """
    del seed
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
        raise ValueError("embeddings must be (n, d) with one label per row, n > 0")
    k = num_classes or int(y.max()) + 1
    mean = x.mean(axis=0)
    # Constant features (scale 0) are left unscaled rather than divided by zero.
    scale = np.where(x.std(axis=0) > 1e-12, x.std(axis=0), 1.0)
    z = torch.from_numpy((x - mean) / scale)
    counts = np.bincount(y, minlength=k)
    cw = compute_class_weights(counts, method=class_weighting)
    target = torch.from_numpy(y)
    sample_w = torch.from_numpy(cw[y])
    w = torch.zeros(x.shape[1], k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        nll = torch.nn.functional.cross_entropy(z @ w + b, target, reduction="none")
        loss = (nll * sample_w).sum() / sample_w.sum() + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    bias = b.detach().numpy().copy()
    bias[counts == 0] = -30.0  # unseen classes: never predicted, not undefined
    return LinearProbe(
        mean=mean,
        scale=scale,
        weight=w.detach().numpy().copy(),
        bias=bias,
        class_weights=cw,
    )

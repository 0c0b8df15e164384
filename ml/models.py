"""Models Loupe trains: a small CNN for images and an MLP for feature vectors.

Both expose the same three pieces the rest of ``ml`` relies on: ``embed(x)`` (penultimate
features, used by diversity strategies, drift tests and the linear-probe baseline), ``head``
(dropout + linear classifier on the embedding) and ``forward(x) == head(embed(x))``. Both are
MC-dropout capable through :func:`enable_mc_dropout`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn


@contextlib.contextmanager
def _init_rng(seed: int | None) -> Iterator[None]:
    """Seed parameter initialisation without touching the caller's global RNG state."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def conv_backbone(in_channels: int, image_size: int, width: int) -> tuple[nn.Sequential, int]:
    """``(features, channels)``: conv-BN-ReLU-pool blocks, as many as the image size allows
    (2 to 5), widening up to 4x ``width``; the small CNNs' shared trunk."""
    n_blocks = min(5, max(2, int(math.log2(max(image_size, 4))) - 2))
    layers: list[nn.Module] = []
    channels = in_channels
    for i in range(n_blocks):
        out = width * min(2**i, 4)
        layers += [
            nn.Conv2d(channels, out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels = out
    return nn.Sequential(*layers), channels


class SmallCNN(nn.Module):
    """A compact CNN trained from scratch, for square images of any configurable size.

    Conv-BN-ReLU-MaxPool blocks double the channels up to ``4 * width``; their number grows
    with ``image_size`` (2 blocks at 16 px, 4 at 64 px, 5 from 128 px) so the receptive field
    keeps up with the image. The embedding concatenates global average and global max
    pooling: averages describe the surface, the max keeps a small, local defect from being
    washed out by a large, clean background.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        image_size: int = 64,
        width: int = 32,
        dropout: float = 0.3,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError("a classifier needs at least two classes")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.image_size = image_size
        with _init_rng(seed):
            self.features, channels = conv_backbone(in_channels, image_size, width)
            self.embedding_dim = 2 * channels
            self.head = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(self.embedding_dim, num_classes)
            )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(n, embedding_dim)``."""
        f = self.features(x)
        return torch.cat((f.mean(dim=(2, 3)), f.amax(dim=(2, 3))), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, num_classes)``."""
        return self.head(self.embed(x))


class MLP(nn.Module):
    """Two hidden layers for tabular or flattened inputs (e.g. sklearn's 8x8 digits)."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: int = 128,
        dropout: float = 0.3,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError("a classifier needs at least two classes")
        self.num_classes = num_classes
        self.in_features = in_features
        self.embedding_dim = hidden
        with _init_rng(seed):
            self.body = nn.Sequential(
                nn.Linear(in_features, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, hidden),
                nn.ReLU(inplace=True),
            )
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(n, hidden)``; inputs are flattened first."""
        return self.body(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(n, num_classes)``."""
        return self.head(self.embed(x))


def build_model(
    kind: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    image_size: int = 64,
    in_features: int | None = None,
    seed: int | None = None,
    **options,
) -> nn.Module:
    """Build a model by name (``"small_cnn"`` or ``"mlp"``), e.g. from a project setting."""
    if kind == "small_cnn":
        return SmallCNN(num_classes, in_channels, image_size, seed=seed, **options)
    if kind == "mlp":
        if in_features is None:
            in_features = in_channels * image_size * image_size
        return MLP(in_features, num_classes, seed=seed, **options)
    raise ValueError(f"unknown model {kind!r}; choose 'small_cnn' or 'mlp'")


def _is_dropout(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.dropout._DropoutNd)


def has_dropout(model: nn.Module) -> bool:
    """Whether ``model`` has any dropout layer (needed for MC-dropout sampling)."""
    return any(_is_dropout(m) for m in model.modules())


def enable_mc_dropout(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode except its dropout layers, for MC-dropout sampling.

    Batch-norm statistics stay frozen, so the only randomness between forward passes is
    dropout: each pass is one draw from the approximate posterior (Gal & Ghahramani, 2016).
    """
    if not has_dropout(model):
        raise ValueError("model has no dropout layer, so MC-dropout samples would all agree")
    model.eval()
    for m in model.modules():
        if _is_dropout(m):
            m.train()
    return model


def _is_remote(path: str) -> bool:
    return "://" in path or path.startswith(("hf:", "hub:"))


def load_backbone_weights(
    model: nn.Module,
    path: str | Path,
    *,
    include_head: bool = False,
) -> dict:
    """Load pretrained backbone weights into ``model`` from a local file, never from a hub.

    Accepts a plain state dict or a checkpoint holding one under ``state_dict`` or ``model``
    (a ``module.`` prefix from DataParallel is dropped). Parameters whose name and shape match
    are copied; the classification head is skipped unless ``include_head`` (a new project
    usually has different classes). Returns ``{"loaded": [...], "skipped": [...]}`` and raises
    if nothing matched, because a silent no-op would train from scratch under a false label.
    """
    text = str(path)
    if _is_remote(text):
        raise ValueError(f"backbone weights must be a local file, got {text!r}")
    file = Path(text)
    if not file.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {file}")
    # weights_only: a checkpoint from elsewhere must not be able to run code on load.
    state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise ValueError(f"{file} does not hold a state dict")
    own = model.state_dict()
    loaded, skipped = [], []
    update = {}
    for raw_name, tensor in state.items():
        name = raw_name.removeprefix("module.")
        if not include_head and name.startswith("head."):
            skipped.append(name)
        elif name in own and isinstance(tensor, torch.Tensor) and own[name].shape == tensor.shape:
            update[name] = tensor
            loaded.append(name)
        else:
            skipped.append(name)
    if not loaded:
        raise ValueError(f"no parameter in {file} matches the model (by name and shape)")
    model.load_state_dict(update, strict=False)
    return {"loaded": loaded, "skipped": skipped}

"""Active-learning simulation: which strategy saves the most labels on data like mine?

``simulate_arrays`` replays the loop on in-memory arrays (an MLP, seconds on sklearn's
digits); ``simulate_imagefolder`` does it on a labeled ImageFolder with the small CNN.
Both return the ``results.json`` document described in :mod:`ml.simulate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ml.simulation.engine import Learner, SimulationConfig, simulate, stratified_split
from ml.simulation.report import censored_summary, labels_to_target, plot_curves, summarize
from ml.strategies import DEFAULT_STRATEGY, Strategy
from ml.training import TrainConfig

__all__ = [
    "Learner",
    "SimulationConfig",
    "array_learner",
    "image_learner",
    "simulate",
    "simulate_arrays",
    "simulate_imagefolder",
    "stratified_split",
    "summarize",
    "labels_to_target",
    "censored_summary",
    "plot_curves",
]


def array_learner(
    in_features: int,
    num_classes: int,
    *,
    hidden: int = 128,
    train_config: TrainConfig | None = None,
    min_steps: int = 200,
) -> Learner:
    """The MLP learner used for tabular or flattened inputs (e.g. sklearn's digits)."""
    from ml.models import MLP

    config = train_config or TrainConfig(
        epochs=20, batch_size=32, lr=3e-3, class_weighting="inverse", num_classes=num_classes
    )
    return Learner(
        model_factory=lambda seed: MLP(in_features, num_classes, hidden=hidden, seed=seed),
        train_config=config,
        min_steps=min_steps,
        threads=1,
    )


def image_learner(
    num_classes: int,
    *,
    in_channels: int,
    image_size: int,
    train_config: TrainConfig | None = None,
    min_steps: int = 150,
    threads: int | None = 1,
) -> Learner:
    """The small-CNN learner used for image folders.

    ``threads=1`` by default: on a busy CPU, torch's intra-op threads wait on each other
    far longer than they compute for a model this small (10x slower was measured on two
    shared cores). ``None`` keeps torch's own setting, which suits an idle many-core host.
    """
    from ml.models import SmallCNN

    config = train_config or TrainConfig(
        epochs=15, batch_size=32, lr=2e-3, class_weighting="inverse", num_classes=num_classes
    )
    return Learner(
        model_factory=lambda seed: SmallCNN(num_classes, in_channels, image_size, seed=seed),
        train_config=config,
        min_steps=min_steps,
        score_batch_size=256,
        threads=threads,
    )


def _config(seeds, initial, batch, rounds, **options) -> SimulationConfig:
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    return SimulationConfig(initial=initial, batch=batch, rounds=rounds, seeds=seeds, **options)


def simulate_arrays(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray,
    *,
    strategies: Sequence[str | Strategy] | None = None,
    seeds: int | Sequence[int] = 5,
    initial: int = 20,
    batch: int = 20,
    rounds: int = 15,
    learner: Learner | None = None,
    class_names: list[str] | None = None,
    progress: bool = False,
    **options,
) -> dict:
    """Simulate active learning on arrays ``x (n, ...)`` with labels ``y (n,)``.

    ``strategies`` defaults to random vs :data:`ml.strategies.DEFAULT_STRATEGY`; ``options``
    are further :class:`SimulationConfig` fields (``holdout_fraction``, ``target_fraction``,
    ``control_fraction``, ``mc_samples``, ``full_data``, ``full_data_fits`` (trainings of the
    whole pool per seed, averaged for the target), ``temperature_scaling``: strategies
    also run with probabilities calibrated on the holdout, as ``<name>+temperature``).
    """
    x = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not torch.is_tensor(x) else x
    y = np.asarray(y, dtype=np.int64)
    num_classes = len(class_names) if class_names else int(y.max()) + 1
    if learner is None:
        learner = array_learner(int(np.prod(x.shape[1:])), num_classes)
    # An empty list runs no strategy: only the full-data reference.
    strategies = list(strategies) if strategies is not None else ["random", DEFAULT_STRATEGY]
    raw = simulate(
        x,
        y,
        learner,
        strategies=strategies,
        config=_config(seeds, initial, batch, rounds, **options),
        num_classes=num_classes,
        progress=progress,
    )
    return summarize(raw, default_strategy=DEFAULT_STRATEGY, class_names=class_names)


def simulate_imagefolder(
    root: str | Path,
    *,
    image_size: int = 64,
    mode: str = "RGB",
    learner: Learner | None = None,
    min_steps: int = 150,
    threads: int | None = 1,
    **kwargs,
) -> dict:
    """Simulate on a fully labeled ImageFolder (``root/<class>/<image>``).

    Images are decoded once into memory (simulations retrain many times); the learner
    defaults to :class:`ml.models.SmallCNN` trained for at least ``min_steps`` steps per fit.
    Other arguments as :func:`simulate_arrays`.
    """
    from ml.data import ImageFolderDataset, load_tensors

    dataset = ImageFolderDataset(root, image_size=image_size, mode=mode)
    x, y = load_tensors(dataset)
    classes = list(dataset.classes)
    if learner is None:
        learner = image_learner(
            len(classes),
            in_channels=x.shape[1],
            image_size=image_size,
            min_steps=min_steps,
            threads=threads,
        )
    result = simulate_arrays(x, y, learner=learner, class_names=classes, **kwargs)
    result["dataset"]["root"] = str(root)
    return result

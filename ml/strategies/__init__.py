"""Acquisition strategies: which unlabeled items are worth an expert's time.

One small interface, arrays in and indices out::

    inputs = AcquisitionInputs(probs=probs, embeddings=emb, labeled_class_counts=counts)
    selection = select_batch(DEFAULT_STRATEGY, inputs, 100, control_fraction=0.1, seed=7)
    selection.indices, selection.scores, selection.is_control

Every batch can reserve a uniformly random *control slice*: comparing the model's gain on
those items with the strategy's picks is how label efficiency is estimated honestly in a
live project. Everything is deterministic by ``seed``.
"""

from __future__ import annotations

import numpy as np

from ml.strategies.adaptive import AdaptiveStrategy, PairAdaptiveStrategy, PickHistory, arm_shares
from ml.strategies.balanced import ClassBalancedStrategy, class_quotas
from ml.strategies.base import (
    ANY_TASK_TYPE,
    AcquisitionInputs,
    Selection,
    Strategy,
    reduce,
    top_k,
)
from ml.strategies.cold_start import COLD_START_METHODS, cold_start, typicality
from ml.strategies.detection import (
    OBJECT_DETECTION,
    BoxAdaptiveStrategy,
    BoxUncertaintyStrategy,
    DiverseBoxStrategy,
)
from ml.strategies.discovery import DiscoveryStrategy
from ml.strategies.diversity import BadgeStrategy, CoresetStrategy, badge_select
from ml.strategies.hybrid import HybridStrategy
from ml.strategies.pairs import PAIR_VERIFICATION, PairMixedStrategy, PairUncertaintyStrategy
from ml.strategies.uncertainty import (
    RandomStrategy,
    UncertaintyStrategy,
    bald_scores,
    entropy_scores,
    least_confidence_scores,
    margin_scores,
    uncertainty_scores,
)

__all__ = [
    "ANY_TASK_TYPE",
    "DEFAULT_STRATEGY",
    "DEFAULT_STRATEGIES",
    "default_strategy",
    "COLD_START_METHODS",
    "AcquisitionInputs",
    "PickHistory",
    "arm_shares",
    "Selection",
    "Strategy",
    "available",
    "reduce",
    "required_inputs",
    "get_strategy",
    "select_batch",
    "cold_start",
    "class_quotas",
    "typicality",
    "top_k",
    "badge_select",
    "bald_scores",
    "entropy_scores",
    "least_confidence_scores",
    "margin_scores",
    "uncertainty_scores",
]

_FACTORIES = {
    "random": lambda **kw: RandomStrategy(**kw),
    "least_confidence": lambda **kw: UncertaintyStrategy("least_confidence", **kw),
    "margin": lambda **kw: UncertaintyStrategy("margin", **kw),
    "entropy": lambda **kw: UncertaintyStrategy("entropy", **kw),
    "bald": lambda **kw: UncertaintyStrategy("bald", **kw),
    "coreset": lambda **kw: CoresetStrategy(**kw),
    "badge": lambda **kw: BadgeStrategy(**kw),
    "class_balanced": lambda **kw: ClassBalancedStrategy(**kw),
    "hybrid": lambda **kw: HybridStrategy(**kw),
    "discovery": lambda **kw: DiscoveryStrategy(**kw),
    "adaptive": lambda **kw: AdaptiveStrategy(**kw),
    "pair_uncertainty": lambda **kw: PairUncertaintyStrategy(**kw),
    "pair_mixed": lambda **kw: PairMixedStrategy(**kw),
    "pair_adaptive": lambda **kw: PairAdaptiveStrategy(**kw),
    "box_sum": lambda **kw: BoxUncertaintyStrategy("sum", **kw),
    "box_mean": lambda **kw: BoxUncertaintyStrategy("mean", **kw),
    "box_max": lambda **kw: BoxUncertaintyStrategy("max", **kw),
    "box_mean_diverse": lambda **kw: DiverseBoxStrategy("mean", **kw),
    "box_adaptive": lambda **kw: BoxAdaptiveStrategy(**kw),
}

# The strategy new projects start with: a mix of hybrid (a margin shortlist, then k-means
# for diversity), class-balanced and discovery picks and random ones, re-weighted every
# batch by what each arm's labeled picks were worth against the random control slice
# (ml.strategies.adaptive). Hybrid alone was the best single strategy on digits with the
# MLP (0.34x random's labels to 90% of full data), but on inspection images with the CNN
# it stalled for 150 labels behind random: it never asked for a defect class nobody had
# labeled. benchmarks/label_efficiency.py measures the mix beside random on both.
DEFAULT_STRATEGY = "adaptive"
# The default of task types whose items the classification strategies cannot read: half
# of a batch of pairs the most likely same ("same" is the rare answer), half the least
# sure, no image in two picks (the simulator's "mixed", measured beside random pairs by
# benchmarks/label_efficiency.py --task pair_verification).
# Pages of boxes: the boxes' uncertainty averaged per page (ml.strategies.detection),
# chosen before measuring as the sum normalised per box; the detection simulator
# (ml.simulation.detection) measures it beside box_sum, box_max and random.
DEFAULT_STRATEGIES = {PAIR_VERIFICATION: "pair_mixed", OBJECT_DETECTION: "box_mean"}


def default_strategy(task_type: str | None = None) -> str:
    """The strategy a project of ``task_type`` selects with when it names none."""
    return DEFAULT_STRATEGIES.get(task_type or "", DEFAULT_STRATEGY)


def available(task_type: str | None = None) -> list[str]:
    """Names accepted by :func:`get_strategy`; with ``task_type``, those that serve it."""
    if task_type is None:
        return list(_FACTORIES)
    return [name for name in _FACTORIES if get_strategy(name).supports(task_type)]


def required_inputs(name: str) -> tuple[str, ...]:
    """The AcquisitionInputs arrays a strategy cannot work without (``Strategy.requires``),
    for callers deciding what to compute: ``("mc_probs",)`` for BALD's MC-dropout draws."""
    return tuple(get_strategy(name).requires)


def get_strategy(name: str, **params) -> Strategy:
    """A strategy by name; ``params`` go to its constructor (e.g. ``within="entropy"``)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(_FACTORIES)}") from None
    return factory(**params)


def select_batch(
    strategy: str | Strategy,
    inputs: AcquisitionInputs,
    batch_size: int,
    *,
    control_fraction: float = 0.1,
    seed: int = 0,
) -> Selection:
    """Select ``batch_size`` items, reserving a random control slice.

    ``round(control_fraction * batch_size)`` items are drawn uniformly from the whole pool
    first (so they are an unbiased sample), then the strategy chooses the rest among the
    remaining items. Strategy picks come first, in priority order; control items follow.
    """
    if not 0.0 <= control_fraction <= 1.0:
        raise ValueError("control_fraction must lie in [0, 1]")
    if isinstance(strategy, str):
        strategy = get_strategy(strategy)
    batch_size = min(int(batch_size), inputs.n)
    n_control = int(round(control_fraction * batch_size))
    # Separate streams: the control draw must not shift with the strategy's own sampling.
    control_rng, strategy_seed = np.random.default_rng([seed, 1]), seed
    control = control_rng.choice(inputs.n, size=n_control, replace=False).astype(np.int64)
    if n_control:
        rest = np.setdiff1d(np.arange(inputs.n), control)
        picked = strategy.select(inputs.take(rest), batch_size - n_control, seed=strategy_seed)
        strategy_indices = rest[picked.indices]
    else:
        picked = strategy.select(inputs, batch_size, seed=strategy_seed)
        strategy_indices = picked.indices
    return Selection(
        indices=np.concatenate([strategy_indices, control]),
        scores=np.concatenate([picked.scores, np.zeros(n_control)]),
        is_control=np.concatenate(
            [np.zeros(strategy_indices.shape[0], bool), np.ones(n_control, bool)]
        ),
        strategy=strategy.name,
        arms=np.concatenate([picked.arms, np.full(n_control, "control", dtype=object)]),
        note=picked.note,
        mix=picked.mix,
    )

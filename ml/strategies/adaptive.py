"""Adaptive acquisition: a mix of strategies, re-weighted each batch by what their earlier
picks turned out to be worth, measured against the random control slice.

No single strategy wins everywhere. Uncertainty sampling refines the boundaries the model
knows but never asks about a class it has not seen; class-seeking and discovery find rare
classes but waste labels once they are covered; random sampling is never far off. Active
Learning by Learning (Hsu & Lin, 2015) learns online which strategy to trust. Here every
batch is split between the arms, so each arm's picks are scored once their labels are in:

    value of a pick = surprise x rarity
    surprise        = 1 if the model that picked it predicted another class, else 1 - confidence
    rarity          = 1 / sqrt(1 + labels its true class had when it was picked)

that is, what the model did not know, weighted toward classes with few labels (balanced
accuracy is the mean recall over classes, so a label of a class with few labels moves it
most). The random control slice gives the same figure for uniformly drawn items, the yield
of not choosing at all; an arm's weight grows with its yield relative to it. When no arm
beats random picks, the random arm's share grows: exploration widens by itself. Recent
batches count more (the value of a strategy changes as the model learns), and every arm
keeps a floor share, so an arm that was unlucky early can come back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ml.strategies.balanced import ClassBalancedStrategy
from ml.strategies.base import AcquisitionInputs, Selection, Strategy
from ml.strategies.discovery import DiscoveryStrategy
from ml.strategies.hybrid import HybridStrategy
from ml.strategies.pairs import PAIR_VERIFICATION, PairMixedStrategy, PairUncertaintyStrategy
from ml.strategies.uncertainty import RandomStrategy

CONTROL = "control"
RANDOM = "random"

# Shares before any pick has a label: uncertainty with diversity leads, and a third of the
# batch explores, as unseen classes matter most early.
DEFAULT_PRIOR = {"hybrid": 0.55, "class_balanced": 0.15, "discovery": 0.15, RANDOM: 0.15}
# The same machinery for pairs (`pair_adaptive`): the pair strategy and random pairs. A
# pair's classes are different / same, so a pick's value is the same surprise x rarity
# ("same" is the rare answer).
PAIR_PRIOR = {"pair_mixed": 0.85, RANDOM: 0.15}
# While a class the project declares has no label at all, random picks take at least this
# share of the batch: a model never shown a class puts no uncertainty on it, and no
# strategy found an unseen class more often than random picks (benchmarks/unseen_class.py).
UNSEEN_CLASS_RANDOM_SHARE = 0.5
# ... until this many random picks have labels without one of the class. From then on the
# share follows how common the class can still be: after n random picks without it, it is
# under 3/n of the pool (95% upper bound, the rule of three), so the share shrinks as
# 150/n. A class a project declares before any such item exists would otherwise keep half
# of every batch random; a class of 0.6% of the pool (digits 1 in benchmarks/
# label_efficiency.py --datasets digits-1-7) goes unfound by 150 random picks 4 times in 10,
# so the share does not end there but shrinks as the bound does.
UNSEEN_CLASS_RANDOM_PICKS = 150
# Each batch, an arm's picks count half as much as those of the batch after.
DECAY = 0.5
# An arm's yield is shrunk toward random's, as if it had this many picks of random value.
PSEUDO_PICKS = 5.0
# How sharply shares follow relative yield (shares grow as yield ** SHARPNESS).
SHARPNESS = 2.0


@dataclass
class PickHistory:
    """Labeled picks of earlier batches: one entry per pick whose label is known.

    ``arm`` is the strategy that picked it (``"control"`` for the random control slice),
    ``label`` its ground truth, ``predicted`` and ``confidence`` what the model said when it
    was picked, ``count_before`` how many labels its true class had then, ``age`` how many
    batches ago it was picked (0: the latest batch). ``value``, when given, is what each
    pick taught as its task type measures it (a page of boxes has no single class to be
    surprised by); :func:`pick_values` then returns it instead of surprise x rarity.
    """

    arm: np.ndarray
    label: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    count_before: np.ndarray
    age: np.ndarray
    value: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.arm = np.asarray(self.arm, dtype=object)
        self.label = np.asarray(self.label, dtype=np.int64)
        self.predicted = np.asarray(self.predicted, dtype=np.int64)
        self.confidence = np.asarray(self.confidence, dtype=np.float64)
        self.count_before = np.asarray(self.count_before, dtype=np.float64)
        self.age = np.asarray(self.age, dtype=np.float64)
        if self.value is not None:
            self.value = np.asarray(self.value, dtype=np.float64)
        n = self.arm.shape[0]
        given = ("value",) if self.value is not None else ()
        for name in ("label", "predicted", "confidence", "count_before", "age", *given):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"PickHistory.{name} must have {n} entries")

    def __len__(self) -> int:
        return int(self.arm.shape[0])

    @classmethod
    def empty(cls) -> PickHistory:
        return cls(*(np.empty(0) for _ in range(6)))

    @classmethod
    def from_rows(cls, rows) -> PickHistory:
        """From ``(arm, label, predicted, confidence, count_before, age)`` tuples, or the
        same with ``value`` last (all rows alike)."""
        rows = list(rows)
        if not rows:
            return cls.empty()
        columns = list(zip(*rows, strict=True))
        if len(columns) not in (6, 7):
            raise ValueError("PickHistory rows have 6 fields, or 7 with the value")
        arm, *rest = columns
        return cls(np.array(arm, dtype=object), *rest)


def pick_values(history: PickHistory) -> np.ndarray:
    """What each labeled pick taught: surprise x rarity (see the module docstring), or the
    task type's own ``history.value`` when it gives one."""
    if history.value is not None:
        return np.clip(np.nan_to_num(history.value, nan=0.0), 0.0, None)
    wrong = history.predicted != history.label
    surprise = np.where(wrong, 1.0, np.clip(1.0 - history.confidence, 0.0, 1.0))
    return surprise / np.sqrt(1.0 + np.maximum(history.count_before, 0.0))


@dataclass
class ArmMix:
    """The shares chosen for a batch, each arm's yield relative to random picks, and why."""

    shares: dict[str, float]
    relative_yield: dict[str, float | None]
    picks: dict[str, int]
    note: str


def arm_shares(
    history: PickHistory | None,
    arms: dict[str, float],
    *,
    floor: float = 0.05,
) -> ArmMix:
    """Shares of the next batch per arm, from ``arms`` (arm -> prior share) and the labeled
    picks of earlier batches.

    The yield of random picks (the control slice, and the random arm) is the yardstick; an
    arm's relative yield is its decayed mean pick value over that of random picks, shrunk
    toward 1 when it has few picks. Shares are prior x relative yield ** SHARPNESS, then
    every arm gets at least ``floor``. Without labeled random picks there is no yardstick
    and the prior stands.
    """
    names = list(arms)
    if not names:
        raise ValueError("arm_shares needs at least one arm")
    if not 0.0 <= floor * len(names) <= 1.0:
        raise ValueError("floor times the number of arms must lie in [0, 1]")
    prior = np.array([max(arms[a], 0.0) for a in names], dtype=np.float64)
    prior = prior / prior.sum() if prior.sum() > 0 else np.full(len(names), 1 / len(names))
    relative: dict[str, float | None] = dict.fromkeys(names)
    counts = dict.fromkeys(names, 0)
    weights = prior.copy()
    baseline = None
    if history is not None and len(history):
        values = pick_values(history)
        decay = DECAY**history.age
        is_random = (history.arm == CONTROL) | (history.arm == RANDOM)
        if is_random.any() and decay[is_random].sum() > 0:
            baseline = float((values * decay)[is_random].sum() / decay[is_random].sum())
            # Random picks that taught nothing (so far) still leave a yardstick: a tenth of
            # what picks taught on average, so the arms that taught something gain.
            overall = float((values * decay).sum() / decay.sum())
            baseline = max(baseline, 0.1 * overall)
        for i, arm in enumerate(names):
            mine = history.arm == arm
            counts[arm] = int(mine.sum())
            if baseline is None or baseline <= 0 or arm == RANDOM:
                continue
            mass = float(decay[mine].sum())
            estimate = (float((values * decay)[mine].sum()) + PSEUDO_PICKS * baseline) / (
                mass + PSEUDO_PICKS
            )
            relative[arm] = estimate / baseline
            weights[i] = prior[i] * relative[arm] ** SHARPNESS
        if baseline is not None and baseline > 0 and RANDOM in relative:
            relative[RANDOM] = 1.0
    weights = weights / weights.sum() if weights.sum() > 0 else prior
    shares = floor + (1.0 - floor * len(names)) * weights
    shares = dict(zip(names, (float(s) for s in shares), strict=True))
    return ArmMix(shares, relative, counts, _note(shares, relative, counts, baseline))


def _note(shares, relative, counts, baseline) -> str:
    split = ", ".join(f"{arm} {share:.0%}" for arm, share in shares.items())
    if baseline is None:
        return f"split {split}: the starting mix (no labeled random pick to compare with yet)"
    if baseline <= 0:
        return f"split {split}: no labeled pick has taught anything yet, the starting mix stands"
    yields = ", ".join(
        f"{arm} {value:.1f}x (from {counts[arm]} labeled picks)"
        for arm, value in relative.items()
        if value is not None and arm != RANDOM
    )
    beaten = [a for a, v in relative.items() if v is not None and a != RANDOM and v > 1.0]
    tail = "" if beaten else "; no strategy beats random picks, so exploration widens"
    return f"split {split}; worth per pick against random picks: {yields}{tail}"


def widen_for_unseen_classes(
    mix: ArmMix,
    class_counts,
    *,
    random_labeled: int | None = None,
    share: float = UNSEEN_CLASS_RANDOM_SHARE,
    taper_after: int = UNSEEN_CLASS_RANDOM_PICKS,
) -> ArmMix:
    """The mix with the random arm raised to at least ``share`` (the other arms scaled
    down in proportion) while a declared class has no label and others have; once
    ``random_labeled`` (labeled random picks so far) passes ``taper_after``, to
    ``share * taper_after / random_labeled`` instead. As it was otherwise, or without a
    random arm."""
    if class_counts is None or RANDOM not in mix.shares:
        return mix
    counts = np.asarray(class_counts)
    unseen = np.flatnonzero(counts == 0)
    # With no label at all there is no model that knows some classes and not others.
    if not len(unseen) or counts.sum() == 0:
        return mix
    which = ", ".join(f"#{int(c) + 1}" for c in unseen[:5])
    many = len(unseen) > 1
    looked = random_labeled or 0
    tapered = looked > taper_after
    if tapered:
        share = share * taper_after / looked
    if mix.shares[RANDOM] >= share:
        return mix
    rest = 1.0 - mix.shares[RANDOM]
    scale = (1.0 - share) / rest if rest > 0 else 0.0
    shares = {a: (share if a == RANDOM else v * scale) for a, v in mix.shares.items()}
    if tapered:
        why = (
            f"still {'have' if many else 'has'} no label after {looked} random picks, so"
            f" {'each is' if many else 'it is'} under {3 / looked:.1%} of the pool or not in"
            f" it: random picks take {share:.0%} of the batch, less the longer they miss it"
        )
    else:
        why = (
            f"{'have' if many else 'has'} no label yet, so random picks take {share:.0%} of"
            " the batch (a model never shown a class cannot point at it)"
        )
    note = f"{mix.note}; class{'es' if many else ''} {which} (in the project's order) {why}"
    return ArmMix(shares, mix.relative_yield, mix.picks, note)


def _allocate(shares: dict[str, float], batch_size: int) -> dict[str, int]:
    """Whole picks per arm, by largest remainder."""
    names = list(shares)
    exact = np.array([shares[a] for a in names]) * batch_size
    whole = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(names)), -(exact - whole)))
    whole[order[: batch_size - int(whole.sum())]] += 1
    return dict(zip(names, whole.tolist(), strict=True))


# The strategies an adaptive mix can split a batch between; a mix over other items (pages
# of boxes) names its own in ``AdaptiveStrategy.arm_factories``.
ARM_FACTORIES: dict[str, Callable[[], Strategy]] = {
    "hybrid": HybridStrategy,
    "class_balanced": ClassBalancedStrategy,
    "discovery": DiscoveryStrategy,
    "pair_mixed": PairMixedStrategy,
    "pair_uncertainty": PairUncertaintyStrategy,
    RANDOM: RandomStrategy,
}


class AdaptiveStrategy(Strategy):
    """Splits the batch between ``arms`` by :func:`arm_shares` over ``inputs.history``.

    Arms pick in turn, largest share first, each among the items the others left. An arm
    whose inputs are missing (discovery without embeddings) gives its share to the others.
    The selection's ``arms`` names each pick's arm and ``note`` says why the split was chosen.
    """

    name = "adaptive"
    arm_factories = ARM_FACTORIES
    reads_history = True

    def __init__(self, prior: dict[str, float] | None = None, floor: float = 0.05) -> None:
        self.prior = dict(prior or DEFAULT_PRIOR)
        unknown = sorted(set(self.prior) - set(self.arm_factories))
        if unknown:
            raise ValueError(
                f"unknown arm {', '.join(unknown)}; choose among {', '.join(self.arm_factories)}"
            )
        self.floor = floor

    def select(self, inputs: AcquisitionInputs, batch_size: int, *, seed: int = 0) -> Selection:
        if batch_size < 0:
            raise ValueError("batch_size must be >= 0")
        batch_size = min(int(batch_size), inputs.n)
        strategies = {a: self.arm_factories[a]() for a in self.prior}
        usable = {
            a: p
            for a, p in self.prior.items()
            if all(getattr(inputs, need) is not None for need in strategies[a].requires)
        }
        floor = min(self.floor, 1.0 / max(len(usable), 1))
        mix = arm_shares(inputs.history, usable, floor=floor)
        mix = widen_for_unseen_classes(
            mix, inputs.labeled_class_counts, random_labeled=inputs.random_labeled
        )
        quota = _allocate(mix.shares, batch_size)
        remaining = np.arange(inputs.n)
        indices, scores, arms = [], [], []
        for number, arm in enumerate(sorted(quota, key=lambda a: (-quota[a], a))):
            need = min(quota[arm], remaining.shape[0])
            if need == 0:
                continue
            picked = strategies[arm].select(inputs.take(remaining), need, seed=seed * 31 + number)
            chosen = remaining[picked.indices]
            indices.append(chosen)
            scores.append(picked.scores)
            arms += [arm] * chosen.shape[0]
            remaining = np.setdiff1d(remaining, chosen)
        return Selection(
            np.concatenate(indices) if indices else np.empty(0, np.int64),
            np.concatenate(scores) if scores else np.empty(0),
            strategy=self.name,
            arms=np.asarray(arms, dtype=object),
            note=mix.note,
            mix={"shares": mix.shares, "relative_yield": mix.relative_yield},
        )


class PairAdaptiveStrategy(AdaptiveStrategy):
    """:class:`AdaptiveStrategy` over pair items: ``pair_mixed`` and random pairs by
    default (:data:`PAIR_PRIOR`), re-weighted by what their labeled picks taught against the
    random control slice."""

    name = "pair_adaptive"
    task_types = (PAIR_VERIFICATION,)

    def __init__(self, prior: dict[str, float] | None = None, floor: float = 0.05) -> None:
        super().__init__(prior=prior or PAIR_PRIOR, floor=floor)

"""Which pages of an object-detection project are worth boxing next.

A detector gives no class probabilities per page, only per box: the task spec
(:mod:`ml.tasks.object_detection`) hands the strategies ``item_scores (n, boxes)``, each
box's uncertainty (1 − max class probability), NaN past a page's last box. A page's figure
is its boxes' reduced by an explicit rule (:func:`ml.strategies.reduce`):

- ``box_sum``: the total doubt on the page, so crowded pages come first (a page of 300
  mildly unsure symbols outranks a page with one puzzling symbol);
- ``box_mean``: the doubt per box, what an expert corrects per box drawn (the default);
- ``box_max``: the page's most doubtful box, whatever else is on it.

``box_mean_diverse`` shortlists the most doubtful pages by ``box_mean`` and spreads the
batch over their embeddings, so that ten scans of the same hard passage do not fill it.

``box_adaptive`` splits each batch between those and random pages, and re-weights them by
what their labeled pages taught against the random control slice
(:mod:`ml.strategies.adaptive`); a page's value is what the detector got wrong on it,
1 − F1 of its boxes (:func:`ml.detection_metrics.page_value`), given by the task type in
``PickHistory.value``.
"""

from __future__ import annotations

import numpy as np

from ml.strategies.adaptive import RANDOM, AdaptiveStrategy
from ml.strategies.base import REDUCTIONS, Strategy, reduce, top_k
from ml.strategies.hybrid import diverse_subset
from ml.strategies.uncertainty import RandomStrategy

# Kept here, not imported from ml.tasks.object_detection: that module imports the
# strategies, and importing it back would load the detector (torch) with the registry.
OBJECT_DETECTION = "object_detection"


def page_scores(inputs, how: str) -> np.ndarray:
    """Per-page uncertainty: ``inputs.item_scores`` reduced over the boxes by ``how``
    (a page without boxes scores 0)."""
    inputs.require("item_scores")
    return reduce(inputs.item_scores, how=how)


class BoxUncertaintyStrategy(Strategy):
    """Pages whose boxes' uncertainty, reduced per page (``sum``, ``mean`` or ``max``), is
    largest; reads ``item_scores (n, boxes)`` (NaN past a page's boxes)."""

    requires = ("item_scores",)
    task_types = (OBJECT_DETECTION,)

    def __init__(self, how: str = "mean") -> None:
        if how not in REDUCTIONS:
            raise ValueError(f"unknown reduction {how!r}; choose one of {', '.join(REDUCTIONS)}")
        self.how = how
        self.name = f"box_{how}"

    def _select(self, inputs, batch_size, rng):
        scores = page_scores(inputs, self.how)
        picked = top_k(scores, batch_size)
        return picked, scores[picked]


class DiverseBoxStrategy(Strategy):
    """The top ``shortlist_factor * b`` pages by box uncertainty (reduced by ``how``), then
    ``b`` of them spread over the page embeddings (``diversity``: ``kmeans`` weighted by
    the uncertainty, or ``kcenter``, also far from the labeled pages). Without embeddings
    it is the plain top ``b``. Picks are reported most uncertain first."""

    requires = ("item_scores",)
    task_types = (OBJECT_DETECTION,)

    def __init__(
        self, how: str = "mean", shortlist_factor: float = 3.0, diversity: str = "kmeans"
    ) -> None:
        if how not in REDUCTIONS:
            raise ValueError(f"unknown reduction {how!r}; choose one of {', '.join(REDUCTIONS)}")
        if shortlist_factor < 1:
            raise ValueError("shortlist_factor must be >= 1")
        self.how = how
        self.shortlist_factor = shortlist_factor
        self.diversity = diversity
        self.name = f"box_{how}_diverse"

    def _select(self, inputs, batch_size, rng):
        scores = page_scores(inputs, self.how)
        shortlist = top_k(scores, int(np.ceil(self.shortlist_factor * batch_size)))
        if inputs.embeddings is None or shortlist.shape[0] <= batch_size:
            chosen = shortlist[:batch_size]
            return chosen, scores[chosen]
        sub = diverse_subset(
            inputs.embeddings[shortlist],
            scores[shortlist],
            batch_size,
            method=self.diversity,
            centers=inputs.labeled_embeddings,
            rng=rng,
        )
        chosen = shortlist[sub]
        chosen = chosen[np.argsort(-scores[chosen], kind="stable")]
        return chosen, scores[chosen]


# The arms of a mix over pages of boxes: the box reductions a detection project can choose
# on its own, and random pages.
BOX_ARM_FACTORIES = {
    "box_mean": lambda: BoxUncertaintyStrategy("mean"),
    "box_sum": lambda: BoxUncertaintyStrategy("sum"),
    "box_mean_diverse": lambda: DiverseBoxStrategy("mean"),
    RANDOM: RandomStrategy,
}
# Shares before any page has its boxes: box_mean, the detection default (the doubt per box,
# what an expert corrects per box drawn), leads; box_mean_diverse keeps near-identical hard
# pages from filling a batch; box_sum asks for crowded pages; random pages explore, and on
# the synthetic score pages they reached 90% of full-data mAP@0.5 in fewer pages than
# box_mean (benchmarks/label_efficiency.py --task object_detection), so they keep a
# classification mix's share.
BOX_PRIOR = {"box_mean": 0.5, "box_mean_diverse": 0.2, "box_sum": 0.15, RANDOM: 0.15}


class BoxAdaptiveStrategy(AdaptiveStrategy):
    """:class:`~ml.strategies.adaptive.AdaptiveStrategy` over pages of boxes: ``box_mean``,
    ``box_mean_diverse``, ``box_sum`` and random pages (:data:`BOX_PRIOR`), re-weighted by
    what their labeled pages taught (``inputs.history.value``: 1 − F1 of the boxes the
    model predicted when it picked the page, :func:`ml.detection_metrics.page_value`)
    against the random control slice."""

    name = "box_adaptive"
    task_types = (OBJECT_DETECTION,)
    arm_factories = BOX_ARM_FACTORIES

    def __init__(self, prior: dict[str, float] | None = None, floor: float = 0.05) -> None:
        super().__init__(prior=prior or BOX_PRIOR, floor=floor)

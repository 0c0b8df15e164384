"""When do more labels stop paying?

Two independent signals, reported side by side so a manager can see why:

* **Stabilizing predictions** (Bloodgood & Vijay-Shanker, 2009): successive models are
  asked about the same fixed, *unlabeled* stop set. When their predictions agree almost
  perfectly (Cohen's kappa near 1) for several rounds in a row, new labels no longer change
  what the model does. Needs no labels, so it is cheap and honest.
* **Plateau of the holdout metric**: the gain of the holdout score per extra 100 labels over
  the last few rounds falls below a threshold.

The recommendation to stop needs both, because each alone has known failure modes (a
model can be stable but bad; a noisy small holdout can look flat for a round or two).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def agreement(previous: np.ndarray, current: np.ndarray) -> float:
    """Fraction of items on which two label vectors agree."""
    previous, current = np.asarray(previous), np.asarray(current)
    if previous.shape != current.shape:
        raise ValueError("predictions must cover the same items")
    return float((previous == current).mean()) if previous.size else 1.0


def cohen_kappa(previous: np.ndarray, current: np.ndarray, num_classes: int | None = None) -> float:
    """Cohen's kappa: agreement corrected for the agreement expected by chance.

    1.0 for identical predictions; when both models predict one and the same class for every
    item the chance agreement is 1 too, and kappa is defined as 1.0 (nothing changed).
    """
    previous = np.asarray(previous, dtype=np.int64)
    current = np.asarray(current, dtype=np.int64)
    if previous.shape != current.shape:
        raise ValueError("predictions must cover the same items")
    if previous.size == 0:
        return 1.0
    k = num_classes or int(max(previous.max(), current.max())) + 1
    observed = float((previous == current).mean())
    p_prev = np.bincount(previous, minlength=k) / previous.size
    p_curr = np.bincount(current, minlength=k) / current.size
    expected = float(p_prev @ p_curr)
    if expected >= 1.0 - 1e-12:
        return 1.0 if observed >= 1.0 - 1e-12 else 0.0
    return (observed - expected) / (1.0 - expected)


@dataclass
class StoppingSignal:
    """The verdict after the latest round, with the evidence behind it."""

    should_stop: bool
    predictions_stable: bool
    metric_plateaued: bool
    kappas: list[float]  # kappa between round i-1 and round i, for i = 1..
    recent_gain_per_100_labels: float | None
    rounds_observed: int
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def stopping_signal(
    stop_set_predictions: Sequence[np.ndarray],
    *,
    labels: Sequence[int] | None = None,
    holdout_metric: Sequence[float] | None = None,
    num_classes: int | None = None,
    kappa_threshold: float = 0.97,
    window: int = 3,
    min_gain_per_100_labels: float = 0.005,
) -> StoppingSignal:
    """Judge whether labeling should continue, one entry per training round.

    ``stop_set_predictions[i]`` are round ``i``'s predicted classes on the fixed stop set;
    ``labels[i]`` the labeled-set size and ``holdout_metric[i]`` e.g. the balanced accuracy
    of that round. Predictions are stable when the last ``window`` consecutive kappas all
    reach ``kappa_threshold``; the metric has plateaued when its gain over the last
    ``window`` rounds, per 100 labels, is below ``min_gain_per_100_labels``. Without a
    holdout metric the decision rests on stability alone.

    The kappa threshold is 0.97 rather than the 0.99 of the original paper: there, models
    were deterministic; a network retrained from scratch on the same labels already
    disagrees with itself on about 1% of items (measured: kappa 0.98-0.995 between rounds
    once the learning curve of sklearn's digits is flat).
    """
    preds = [np.asarray(p) for p in stop_set_predictions]
    kappas = [cohen_kappa(a, b, num_classes) for a, b in zip(preds[:-1], preds[1:], strict=True)]
    stable = len(kappas) >= window and all(k >= kappa_threshold for k in kappas[-window:])

    gain = None
    plateau = False
    has_metric = holdout_metric is not None and labels is not None
    if has_metric:
        metric = np.asarray(holdout_metric, dtype=np.float64)
        sizes = np.asarray(labels, dtype=np.float64)
        if metric.shape != sizes.shape:
            raise ValueError("labels and holdout_metric need one entry per round")
        if metric.shape[0] > window:
            added = sizes[-1] - sizes[-1 - window]
            # Best-so-far before the window vs best inside it: one lucky round is not a trend.
            delta = metric[-window:].max() - metric[:-window].max()
            gain = float(delta / added * 100.0) if added > 0 else 0.0
            plateau = gain < min_gain_per_100_labels

    should_stop = stable and (plateau if has_metric else True)
    if should_stop:
        message = (
            f"More labels have stopped paying: predictions on the stop set changed by less "
            f"than kappa {kappa_threshold} for {window} rounds"
            + (f" and the holdout score gained {gain:+.3f} per 100 labels." if has_metric else ".")
        )
    elif stable and gain is None:
        message = (
            f"Predictions are stable, but {window + 1} rounds of holdout scores are needed "
            "to judge the trend: keep labeling."
        )
    elif stable:
        message = (
            f"Predictions are stable, but the holdout score still gains {gain:+.3f} per "
            "100 labels: keep labeling."
        )
    elif plateau:
        message = (
            "The holdout score is flat, but the model still changes its mind on the stop set: "
            "keep labeling (or check the holdout's size)."
        )
    else:
        message = (
            "The model still changes its mind on the stop set between versions"
            + (" and its holdout score is still rising" if has_metric and gain is not None else "")
            + ": keep labeling."
        )
    return StoppingSignal(
        should_stop=should_stop,
        predictions_stable=stable,
        metric_plateaued=plateau,
        kappas=[float(k) for k in kappas],
        recent_gain_per_100_labels=gain,
        rounds_observed=len(preds),
        message=message,
    )

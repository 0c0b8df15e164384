"""Replay active learning on fully labeled data to compare strategies before labeling.

Every seed takes its own stratified holdout; the rest is the pool whose labels are hidden
and revealed only when a strategy asks for them. All strategies of a seed start from the
same initial labeled set and train the same model, so differences come from selection only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ml.artifacts import ItemArrays
from ml.metrics import balanced_accuracy, confusion_matrix, macro_f1
from ml.simulation.report import full_data_seed, mean_of_fits
from ml.stopping import stopping_signal
from ml.strategies import AcquisitionInputs, PickHistory, Strategy, get_strategy, select_batch
from ml.strategies.cold_start import cold_start
from ml.training import TrainConfig, train_classifier


@dataclass
class SimulationConfig:
    """Budget and protocol of one simulation (``rounds`` batches after the initial set)."""

    initial: int = 20
    batch: int = 20
    rounds: int = 15
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    holdout_fraction: float = 0.25
    target_fraction: float = 0.9
    control_fraction: float = 0.0
    mc_samples: int = 10
    full_data: bool = True
    # Trainings on the whole pool per seed; the target is their mean. Four trainings of the
    # inspection CNN lay up to 0.08 balanced accuracy apart with their seed alone, and a
    # target resting on one of them with it.
    full_data_fits: int = 3
    # Benchmarks only need the first crossing of the target: stop a run there.
    stop_at_target: bool = False
    # Unlabeled items whose predictions feed the stopping signal (0 = no signal).
    stop_set: int = 500
    # Strategies to run a second time with temperature scaling: each round's T is fitted on
    # the holdout (as Loupe fits it on a project's fixed holdout) and divides the pool's
    # logits before selection sees them. Reported as "<name>+temperature".
    temperature_scaling: Sequence[str] = ()
    # Classes kept out of the initial labeled set: a defect type nobody has labeled yet,
    # to measure how fast each strategy discovers it.
    initial_without: Sequence[int] = ()


TEMPERATURE_SUFFIX = "+temperature"


@dataclass
class Learner:
    """Trains a fresh model for a labeled set and scores items with it.

    ``min_steps`` keeps tiny labeled sets from being under-trained: the epoch count grows so
    that every fit takes at least that many optimisation steps.

    ``warm_start_steps`` > 0 replays what a Loupe project does by default: each round's
    model fine-tunes the previous round's for exactly that many steps, and one round in
    ``full_retrain_every`` (0: never after the first) trains from scratch again.
    """

    model_factory: Callable[[int], torch.nn.Module]
    train_config: TrainConfig = field(default_factory=TrainConfig)
    min_steps: int = 200
    score_batch_size: int = 1024
    # Tiny models spend more time synchronising threads than computing; None keeps torch's.
    threads: int | None = None
    warm_start_steps: int = 0
    full_retrain_every: int = 0

    def fit(
        self,
        x: torch.Tensor,
        y: np.ndarray,
        *,
        seed: int,
        start: torch.nn.Module | None = None,
    ) -> torch.nn.Module:
        """A model trained on ``(x, y)``: from scratch, or from a copy of ``start``'s
        weights for exactly ``warm_start_steps`` steps."""
        # train_classifier raises the epochs to reach min_steps (counting its real batches).
        cfg = replace(
            self.train_config, min_steps=self.min_steps, seed=seed, early_stopping_patience=None
        )
        model = self.model_factory(seed)
        if start is not None:
            model.load_state_dict(start.state_dict())
            steps = self.warm_start_steps
            cfg = replace(cfg, min_steps=steps, max_steps=steps)
        with torch_threads(self.threads):
            return train_classifier(model, x, y, config=cfg).model

    def warm_start(self, previous: torch.nn.Module | None, in_a_row: int) -> bool:
        """Whether the next fit starts from ``previous``, after ``in_a_row`` warm starts in
        a row (the platform's rule: LOUPE_WARM_START_STEPS, LOUPE_FULL_RETRAIN_EVERY)."""
        if previous is None or self.warm_start_steps <= 0:
            return False
        every = self.full_retrain_every
        return not (every and in_a_row + 1 >= every)

    def score(self, model, x: torch.Tensor, *, mc_samples: int = 0, seed: int = 0):
        from ml.scoring import score

        with torch_threads(self.threads):
            return score(
                model, x, batch_size=self.score_batch_size, mc_samples=mc_samples, seed=seed
            )


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (None: torch's own setting)."""
    if threads is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(pool, holdout)`` positions; each class with 2+ items keeps at least one in both."""
    rng = np.random.default_rng([seed, 7])
    pool, holdout = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_hold = int(round(fraction * len(members)))
        if len(members) >= 2:
            n_hold = min(max(n_hold, 1), len(members) - 1)
        holdout.append(members[:n_hold])
        pool.append(members[n_hold:])
    return np.sort(np.concatenate(pool)), np.sort(np.concatenate(holdout))


def _evaluate(learner: Learner, model, x, y, num_classes: int) -> dict:
    pred = learner.score(model, x).probs.argmax(axis=1)
    cm = confusion_matrix(y, pred, num_classes)
    recall = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    return {
        "balanced_accuracy": balanced_accuracy(y, pred, num_classes),
        "macro_f1": macro_f1(y, pred, num_classes),
        "recall": recall.tolist(),
    }


def full_data_reference(
    learner: Learner,
    x_pool: torch.Tensor,
    y_pool: np.ndarray,
    x_hold: torch.Tensor,
    y_hold: np.ndarray,
    *,
    num_classes: int,
    seed: int,
    fits: int,
    tick: Callable[[], None] = lambda: None,
) -> dict:
    """The whole pool trained ``fits`` times with different training seeds: their mean
    metrics, and under ``fits`` each training's own (with its training seed)."""
    if fits < 1:
        raise ValueError("full_data_fits must be at least 1")
    trainings = []
    for k in range(fits):
        fit_seed = full_data_seed(seed, k)
        model = learner.fit(x_pool, y_pool, seed=fit_seed)
        trainings.append(
            {"seed": fit_seed} | _evaluate(learner, model, x_hold, y_hold, num_classes)
        )
        tick()
    return mean_of_fits(trainings)


def _calibrated(learner: Learner, model, scored, x_hold, y_hold):
    """``(scored, T)``: the scores with probabilities (and MC draws) divided by the
    temperature fitted on the holdout."""
    from ml.calibration import apply_temperature, fit_temperature

    temperature = fit_temperature(learner.score(model, x_hold).probs, y_hold)
    mc = scored.mc_probs
    calibrated = replace(
        scored,
        probs=apply_temperature(scored.probs, temperature),
        mc_probs=None if mc is None else apply_temperature(mc, temperature),
    )
    return calibrated, temperature


def run_strategy(
    strategy: Strategy,
    learner: Learner,
    x_pool: torch.Tensor,
    y_pool: np.ndarray,
    x_hold: torch.Tensor,
    y_hold: np.ndarray,
    initial: np.ndarray,
    *,
    num_classes: int,
    config: SimulationConfig,
    seed: int,
    target: float | None = None,
    tick: Callable[[], None] = lambda: None,
    temperature_scaling: bool = False,
) -> dict:
    """One learning curve: train, evaluate, select, reveal labels, for every round.

    With ``target`` (a balanced accuracy) the curve ends at the first round reaching it.
    With ``temperature_scaling`` selection sees the pool's probabilities calibrated by a
    temperature fitted on the holdout each round (:mod:`ml.calibration`); the curve's
    ``temperature`` lists them.
    """
    labeled = np.zeros(len(y_pool), dtype=bool)
    labeled[initial] = True
    needs_mc = "mc_probs" in strategy.requires
    curve = {
        "labels": [],
        "balanced_accuracy": [],
        "macro_f1": [],
        "recall": [],
        "class_counts": [],
    }
    curve["stop_signal_at"] = None
    # Per round: whether its model fine-tuned the previous round's (Learner.warm_start).
    curve["warm_start"] = []
    model, in_a_row = None, 0
    # Per batch: picks per arm, the picks' classes, and why the mix was chosen.
    curve["arms"], curve["picked_classes"], curve["notes"] = [], [], []
    history: list[tuple] = []  # (arm, label, predicted, confidence, count_before, round)
    if temperature_scaling:
        curve["temperature"] = []
    # A fixed stop set, drawn once per seed from the pool (same for every strategy).
    stop_rng = np.random.default_rng([seed, 11])
    stop_idx = stop_rng.permutation(len(y_pool))[: config.stop_set]
    stop_preds: list[np.ndarray] = []
    for round_no in range(config.rounds + 1):
        train_idx = np.flatnonzero(labeled)
        warm = learner.warm_start(model, in_a_row)
        in_a_row = in_a_row + 1 if warm else 0
        model = learner.fit(
            x_pool[train_idx],
            y_pool[train_idx],
            seed=seed * 1009 + round_no,
            start=model if warm else None,
        )
        curve["warm_start"].append(warm)
        metrics = _evaluate(learner, model, x_hold, y_hold, num_classes)
        counts = np.bincount(y_pool[train_idx], minlength=num_classes)
        curve["labels"].append(int(train_idx.shape[0]))
        curve["balanced_accuracy"].append(metrics["balanced_accuracy"])
        curve["macro_f1"].append(metrics["macro_f1"])
        curve["recall"].append(metrics["recall"])
        curve["class_counts"].append(counts.tolist())
        if stop_idx.shape[0] and curve["stop_signal_at"] is None:
            stop_preds.append(learner.score(model, x_pool[stop_idx]).probs.argmax(axis=1))
            signal = stopping_signal(
                stop_preds,
                labels=curve["labels"],
                holdout_metric=curve["balanced_accuracy"],
                num_classes=num_classes,
            )
            if signal.should_stop:
                curve["stop_signal_at"] = curve["labels"][-1]
        tick()
        unlabeled = np.flatnonzero(~labeled)
        reached = target is not None and metrics["balanced_accuracy"] >= target
        if round_no == config.rounds or unlabeled.shape[0] == 0 or reached:
            break
        scored = learner.score(
            model, x_pool, mc_samples=config.mc_samples if needs_mc else 0, seed=seed
        )
        if temperature_scaling:
            scored, temperature = _calibrated(learner, model, scored, x_hold, y_hold)
            curve["temperature"].append(temperature)
        pool = ItemArrays(
            item_ids=np.arange(len(y_pool)),
            probs=scored.probs,
            embeddings=scored.embeddings,
            mc_probs=scored.mc_probs,
        )
        candidates = pool.take(unlabeled)
        inputs = AcquisitionInputs(
            probs=candidates.probs,
            embeddings=candidates.embeddings,
            mc_probs=candidates.mc_probs,
            labeled_embeddings=pool.take(train_idx).embeddings,
            labeled_class_counts=counts,
            history=_history(history, round_no),
            random_labeled=sum(1 for row in history if row[0] in ("control", "random")),
        )
        chosen = select_batch(
            strategy,
            inputs,
            config.batch,
            control_fraction=config.control_fraction,
            seed=seed * 7919 + round_no,
        )
        positions = unlabeled[chosen.indices]
        picked_probs = scored.probs[positions]
        for arm, pos, p in zip(chosen.arms, positions, picked_probs, strict=True):
            label = int(y_pool[pos])
            history.append(
                (arm, label, int(p.argmax()), float(p.max()), int(counts[label]), round_no)
            )
        arms, per_arm = np.unique(chosen.arms.astype(str), return_counts=True)
        curve["arms"].append(dict(zip(arms.tolist(), per_arm.tolist(), strict=True)))
        curve["picked_classes"].append(
            np.bincount(y_pool[positions], minlength=num_classes).tolist()
        )
        curve["notes"].append(chosen.note)
        labeled[positions] = True
    return curve


def _history(rows: list[tuple], round_no: int) -> PickHistory:
    """The picks of earlier rounds as the adaptive strategy reads them (all labeled: the
    simulator reveals a label as soon as it is asked for)."""
    return PickHistory.from_rows(row[:5] + (round_no - 1 - row[5],) for row in rows)


def simulate(
    x: torch.Tensor,
    y: np.ndarray,
    learner: Learner,
    *,
    strategies: Sequence[str | Strategy],
    config: SimulationConfig,
    num_classes: int | None = None,
    progress: bool = True,
) -> dict:
    """Run every strategy on every seed; returns raw per-seed curves and full-data metrics.

    The result is summarised for people by :func:`ml.simulation.report.summarize`.
    """
    from tqdm.auto import tqdm

    y = np.asarray(y, dtype=np.int64)
    num_classes = num_classes or int(y.max()) + 1
    resolved = [get_strategy(s) if isinstance(s, str) else s for s in strategies]
    names = [s.name for s in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"strategies must have distinct names, got {names}")
    unknown = [n for n in config.temperature_scaling if n not in names]
    if unknown:
        raise ValueError(f"temperature_scaling names strategies not simulated: {unknown}")
    # (display name, strategy, calibrated): calibrated variants run beside their original.
    runs = [(s.name, s, False) for s in resolved] + [
        (s.name + TEMPERATURE_SUFFIX, s, True)
        for s in resolved
        if s.name in config.temperature_scaling
    ]
    names = [name for name, _, _ in runs]
    per_round = config.rounds + 1
    fits = config.full_data_fits if config.full_data else 0
    total = len(config.seeds) * (len(runs) * per_round + fits)
    bar = tqdm(total=total, desc="simulating", unit="fit", disable=not progress)
    curves: dict[str, list[dict]] = {name: [] for name in names}
    full: list[dict] = []
    try:
        for seed in config.seeds:
            pool, hold = stratified_split(y, config.holdout_fraction, seed)
            x_pool, y_pool, x_hold, y_hold = x[pool], y[pool], x[hold], y[hold]
            target = None
            if config.full_data:
                bar.set_postfix_str(f"seed {seed} full data")
                full.append(
                    full_data_reference(
                        learner,
                        x_pool,
                        y_pool,
                        x_hold,
                        y_hold,
                        num_classes=num_classes,
                        seed=seed,
                        fits=fits,
                        tick=bar.update,
                    )
                )
                if config.stop_at_target:
                    target = config.target_fraction * full[-1]["balanced_accuracy"] - 1e-12
            allowed = np.flatnonzero(~np.isin(y_pool, list(config.initial_without)))
            initial = allowed[cold_start(len(allowed), config.initial, seed=seed)]
            for name, strategy, calibrated in runs:
                bar.set_postfix_str(f"seed {seed} {name}")
                curves[name].append(
                    run_strategy(
                        strategy,
                        learner,
                        x_pool,
                        y_pool,
                        x_hold,
                        y_hold,
                        initial,
                        num_classes=num_classes,
                        config=config,
                        seed=seed,
                        target=target,
                        tick=bar.update,
                        temperature_scaling=calibrated,
                    )
                )
    finally:
        bar.close()
    return {
        "config": asdict(config)
        | {
            "warm_start_steps": learner.warm_start_steps,
            "full_retrain_every": learner.full_retrain_every,
            "seeds": list(config.seeds),
            "temperature_scaling": list(config.temperature_scaling),
            "initial_without": list(config.initial_without),
        },
        "num_classes": num_classes,
        "class_counts": np.bincount(y, minlength=num_classes).tolist(),
        "strategies": names,
        "full_data_per_seed": full,
        "curves_per_seed": curves,
    }

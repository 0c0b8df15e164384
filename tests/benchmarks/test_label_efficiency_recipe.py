"""The label-efficiency benchmark trains the inspection CNN as a new project does."""

import importlib

from benchmarks.label_efficiency import (
    PLATFORM_FULL_RETRAIN_EVERY,
    PLATFORM_WARM_START_STEPS,
    platform_learner,
)


def test_the_benchmark_warm_starts_as_the_platform_does_by_default(monkeypatch):
    for name in ("LOUPE_WARM_START_STEPS", "LOUPE_FULL_RETRAIN_EVERY", "LOUPE_MIN_TRAIN_STEPS"):
        monkeypatch.delenv(name, raising=False)
    # The platform's own defaults (the test settings lower some of them for speed).
    defaults = importlib.reload(importlib.import_module("config.settings.loupe"))
    assert defaults.LOUPE_WARM_START_STEPS == PLATFORM_WARM_START_STEPS
    assert defaults.LOUPE_FULL_RETRAIN_EVERY == PLATFORM_FULL_RETRAIN_EVERY
    assert platform_learner(4, 64).min_steps == defaults.LOUPE_MIN_TRAIN_STEPS
    learner = platform_learner(4, 64)
    assert (learner.warm_start_steps, learner.full_retrain_every) == (100, 5)
    # Versions 1 and 6 train from scratch, 2-5 fine-tune: the platform's rule.
    model, in_a_row, pattern = None, 0, []
    for _ in range(7):
        warm = learner.warm_start(model, in_a_row)
        in_a_row = in_a_row + 1 if warm else 0
        pattern.append(warm)
        model = object()
    assert pattern == [False, True, True, True, True, False, True]
    chain = platform_learner(4, 64, full_retrain_every=0)
    assert all(chain.warm_start(object(), n) for n in range(10))  # never from scratch again
    scratch = platform_learner(4, 64, warm_start=False)
    assert scratch.warm_start_steps == 0 and not scratch.warm_start(object(), 0)

"""End-to-end simulation, small enough to run in seconds."""

import json

import numpy as np
import pytest
from PIL import Image

from ml.simulate import main
from ml.simulation import array_learner, labels_to_target, simulate_arrays, stratified_split
from ml.strategies import DEFAULT_STRATEGY


def _blobs(seed=0):
    """Three separable classes, one of them rare (10 of 130 items)."""
    rng = np.random.default_rng(seed)
    sizes = (60, 60, 10)
    centers = np.array([[0, 0, 0, 0], [4, 0, 4, 0], [0, 4, 0, 4]], dtype=np.float32)
    clouds = [c + rng.normal(scale=0.7, size=(s, 4)) for c, s in zip(centers, sizes, strict=True)]
    x = np.concatenate(clouds)
    y = np.concatenate([np.full(s, i) for i, s in enumerate(sizes)])
    return x.astype(np.float32), y


def test_stratified_split_keeps_every_class_on_both_sides():
    y = np.array([0] * 40 + [1] * 3)
    pool, hold = stratified_split(y, 0.25, seed=0)
    assert len(np.intersect1d(pool, hold)) == 0 and len(pool) + len(hold) == 43
    assert set(y[hold]) == {0, 1} and set(y[pool]) == {0, 1}


def test_simulation_on_arrays_produces_comparable_curves():
    x, y = _blobs()
    learner = array_learner(4, 3, hidden=16, min_steps=30)
    result = simulate_arrays(
        x, y, strategies=["random", "margin", "bald"], seeds=2,
        initial=10, batch=10, rounds=3, learner=learner, mc_samples=4,
    )  # fmt: skip
    assert result["full_data"]["balanced_accuracy_mean"] > 0.8
    for name in ("random", "margin", "bald"):
        curve = result["curves"][name]
        assert curve["labels"] == [10, 20, 30, 40]
        for key in ("balanced_accuracy", "macro_f1"):
            assert len(curve[f"{key}_mean"]) == 4 and len(curve[f"{key}_std"]) == 4
            assert all(0.0 <= v <= 1.0 for v in curve[f"{key}_mean"])
        assert name in result["labels_to_target"]
        assert len(result["labels_to_target_per_seed"][name]) == 2
        assert len(result["stop_signal_at"][name]) == 2
    # Seeds share the initial set, so every strategy starts from the same first point.
    assert (
        result["curves"]["random"]["per_seed"][0]["class_counts"][0]
        == (result["curves"]["margin"]["per_seed"][0]["class_counts"][0])
    )
    assert result["default_strategy"] == DEFAULT_STRATEGY
    json.dumps(result)  # plain JSON all the way down


def test_without_strategies_random_is_compared_with_the_default():
    x, y = _blobs(1)
    result = simulate_arrays(
        x, y, seeds=1, initial=10, batch=10, rounds=1,
        learner=array_learner(4, 3, hidden=8, min_steps=10),
    )  # fmt: skip
    assert set(result["curves"]) == {"random", DEFAULT_STRATEGY}


def test_labels_to_target_is_the_first_crossing_or_none():
    assert labels_to_target([10, 20, 30], [0.5, 0.8, 0.7], 0.75) == 20
    assert labels_to_target([10, 20, 30], [0.5, 0.6, 0.7], 0.75) is None


@pytest.fixture
def image_folder(tmp_path):
    """A tiny ImageFolder: bright vs dark vs striped 16-pixel images."""
    rng = np.random.default_rng(0)
    for name, count in (("bright", 14), ("dark", 14), ("striped", 6)):
        folder = tmp_path / "data" / name
        folder.mkdir(parents=True)
        for i in range(count):
            base = {"bright": 200, "dark": 40, "striped": 120}[name]
            img = np.clip(base + rng.normal(scale=10, size=(16, 16, 3)), 0, 255)
            if name == "striped":
                img[::2] = 250
            Image.fromarray(img.astype(np.uint8)).save(folder / f"{i}.png")
    return tmp_path / "data"


def test_command_line_writes_results_and_plot(image_folder, tmp_path, capsys):
    out, plot = tmp_path / "results.json", tmp_path / "curves.png"
    code = main([
        "--data", str(image_folder), "--strategies", "random,entropy", "--seeds", "1",
        "--initial", "6", "--batch", "4", "--rounds", "2", "--image-size", "16",
        "--min-steps", "8", "--out", str(out), "--plot", str(plot), "--quiet",
    ])  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    assert results["dataset"]["class_names"] == ["bright", "dark", "striped"]
    assert results["curves"]["entropy"]["labels"] == [6, 10, 14]
    assert "balanced_accuracy_mean" in results["full_data"]
    assert set(results["labels_to_target"]) == {"random", "entropy"}
    assert plot.stat().st_size > 1000
    assert "labels to target" in capsys.readouterr().out


def test_command_line_rejects_unknown_strategies(image_folder, capsys):
    assert main(["--data", str(image_folder), "--strategies", "random,oracle"]) == 2
    assert "oracle" in capsys.readouterr().err


def test_temperature_scaling_runs_the_strategy_again_beside_the_original():
    x, y = _blobs(2)
    result = simulate_arrays(
        x, y, strategies=["random", "margin"], seeds=1, initial=10, batch=10, rounds=2,
        learner=array_learner(4, 3, hidden=8, min_steps=10), holdout_fraction=0.45,
        temperature_scaling=["margin"],
    )  # fmt: skip
    assert result["strategies"] == ["random", "margin", "margin+temperature"]
    calibrated = result["curves"]["margin+temperature"]["per_seed"][0]
    plain = result["curves"]["margin"]["per_seed"][0]
    # Same start, and one temperature fitted on the holdout per selection round.
    assert calibrated["class_counts"][0] == plain["class_counts"][0]
    assert len(calibrated["temperature"]) == 2
    assert all(t > 0 and t != 1.0 for t in calibrated["temperature"])  # fitted, not skipped
    assert "temperature" not in plain
    assert result["config"]["temperature_scaling"] == ["margin"]


def test_temperature_scaling_of_a_strategy_not_simulated_is_refused():
    x, y = _blobs(3)
    with pytest.raises(ValueError, match="temperature_scaling"):
        simulate_arrays(
            x, y, strategies=["random"], seeds=1, initial=10, batch=10, rounds=1,
            learner=array_learner(4, 3, hidden=8, min_steps=10), temperature_scaling=["margin"],
        )  # fmt: skip


def test_runs_split_over_processes_merge_into_the_run_they_make_together():
    from ml.simulation.report import merge_results

    x, y = _blobs(2)
    learner = array_learner(4, 3, hidden=16, min_steps=30)
    kwargs = dict(initial=10, batch=10, rounds=2, learner=learner)
    whole = simulate_arrays(x, y, strategies=["random", "margin"], seeds=[0, 1], **kwargs)
    random0 = simulate_arrays(x, y, strategies=["random"], seeds=[0], **kwargs)
    margin0 = simulate_arrays(x, y, strategies=["margin"], seeds=[0], **kwargs)
    both1 = simulate_arrays(x, y, strategies=["random", "margin"], seeds=[1], **kwargs)
    merged = merge_results([both1, random0, margin0])
    assert merged["config"]["seeds"] == [0, 1]
    for key in ("curves", "labels_to_target", "labels_to_target_per_seed", "full_data"):
        assert json.dumps(merged[key], sort_keys=True) == json.dumps(whole[key], sort_keys=True)
    # A strategy without every seed, a seed twice, or other settings are refused.
    with pytest.raises(ValueError, match="margin has no run for seed"):
        merge_results([both1, random0])
    with pytest.raises(ValueError, match="seed 0 in two results"):
        merge_results([random0, random0])
    other = simulate_arrays(x, y, strategies=["margin"], seeds=[0], **(kwargs | {"batch": 5}))
    with pytest.raises(ValueError, match="differ in settings: batch"):
        merge_results([random0, other])


def test_the_target_rests_on_the_mean_of_several_full_data_trainings():
    from ml.simulation.report import full_data_seed

    x, y = _blobs(4)
    learner = array_learner(4, 3, hidden=8, min_steps=10)
    kwargs = dict(strategies=["random"], seeds=[0, 1], initial=10, batch=10, rounds=1)
    result = simulate_arrays(x, y, learner=learner, full_data_fits=3, **kwargs)
    full = result["full_data"]
    assert full["fits_per_seed"] == [3, 3]
    for seed, entry, (low, high) in zip(
        [0, 1], full["per_seed"], full["fit_range_per_seed"], strict=True
    ):
        fits = entry["fits"]
        assert [f["seed"] for f in fits] == [full_data_seed(seed, k) for k in range(3)]
        scores = [f["balanced_accuracy"] for f in fits]
        assert entry["balanced_accuracy"] == pytest.approx(np.mean(scores))
        assert (low, high) == (min(scores), max(scores))
    means = [e["balanced_accuracy"] for e in full["per_seed"]]
    assert full["target_balanced_accuracy"] == pytest.approx(0.9 * np.mean(means))
    # The first training is the one a single-training run makes, so older results still
    # compare: same seed, same score.
    single = simulate_arrays(x, y, learner=learner, full_data_fits=1, **kwargs)
    for one, three in zip(single["full_data"]["per_seed"], full["per_seed"], strict=True):
        assert one["fits"] == three["fits"][:1]
    with pytest.raises(ValueError, match="at least 1"):
        simulate_arrays(x, y, learner=learner, full_data_fits=0, **kwargs)


def test_full_data_trainings_run_apart_join_the_reference_of_the_curves():
    from ml.simulation.report import merge_results

    x, y = _blobs(5)
    learner = array_learner(4, 3, hidden=8, min_steps=10)
    kwargs = dict(seeds=[0], initial=10, batch=10, rounds=2, learner=learner)
    curves = simulate_arrays(x, y, strategies=["random"], full_data_fits=1, **kwargs)
    reference = simulate_arrays(x, y, strategies=[], full_data_fits=3, **kwargs)
    assert reference["strategies"] == [] and reference["full_data"]["fits_per_seed"] == [3]
    merged = merge_results([curves, reference])
    # The curves' one training and the reference's first are the same one: counted once.
    assert merged["full_data"]["fits_per_seed"] == [3]
    assert merged["full_data"]["per_seed"][0] == reference["full_data"]["per_seed"][0]
    assert merged["curves"]["random"]["per_seed"] == curves["curves"]["random"]["per_seed"]
    target = 0.9 * reference["full_data"]["balanced_accuracy_mean"]
    run = curves["curves"]["random"]["per_seed"][0]
    assert merged["labels_to_target_per_seed"]["random"] == [
        labels_to_target(run["labels"], run["balanced_accuracy"], target)
    ]
    # A result saved before full-data entries listed their trainings counts as the first.
    legacy = json.loads(json.dumps(curves))
    entry = legacy["full_data"]["per_seed"][0]
    legacy["full_data"]["per_seed"][0] = {
        k: entry[k] for k in ("balanced_accuracy", "macro_f1", "recall")
    }
    del legacy["config"]["full_data_fits"]
    assert merge_results([legacy, reference])["full_data"]["fits_per_seed"] == [3]
    # The same training seed with another result (another CPU's floating point) is
    # another training: both count.
    elsewhere = json.loads(json.dumps(curves))
    elsewhere["full_data"]["per_seed"][0]["fits"][0]["balanced_accuracy"] -= 0.01
    merged = merge_results([elsewhere, reference])
    assert merged["full_data"]["fits_per_seed"] == [4]
    scores = [f["balanced_accuracy"] for f in merged["full_data"]["per_seed"][0]["fits"]]
    assert merged["full_data"]["per_seed"][0]["balanced_accuracy"] == pytest.approx(np.mean(scores))


def test_a_warm_started_learner_fine_tunes_the_previous_round_as_a_project_does():
    x, y = _blobs(6)
    learner = array_learner(4, 3, hidden=8, min_steps=40)
    learner.warm_start_steps, learner.full_retrain_every = 5, 3
    kwargs = dict(strategies=["random"], seeds=[0], initial=10, batch=10, rounds=5)
    result = simulate_arrays(x, y, learner=learner, full_data_fits=1, **kwargs)
    run = result["curves"]["random"]["per_seed"][0]
    # From scratch, two fine-tunings, from scratch again: one version in 3.
    assert run["warm_start"] == [False, True, True, False, True, True]
    assert result["config"]["warm_start_steps"] == 5
    assert result["config"]["full_retrain_every"] == 3
    # Fine-tuning starts from the previous model: the same labels give another curve than
    # training from scratch each round, and the from-scratch rounds are identical.
    scratch = simulate_arrays(
        x, y, learner=array_learner(4, 3, hidden=8, min_steps=40), full_data_fits=1, **kwargs
    )
    plain = scratch["curves"]["random"]["per_seed"][0]
    assert plain["warm_start"] == [False] * 6
    assert run["balanced_accuracy"][0] == plain["balanced_accuracy"][0]
    assert run["class_counts"][:2] == plain["class_counts"][:2]
    # Runs of the two recipes do not merge into one table.
    from ml.simulation.report import merge_results

    with pytest.raises(ValueError, match="warm_start_steps"):
        merge_results([result, scratch])
    # A full-data reference trains from scratch whatever the recipe: it joins either.
    reference = simulate_arrays(
        x, y, learner=array_learner(4, 3, hidden=8, min_steps=40), full_data_fits=2,
        **(kwargs | {"strategies": []}),
    )  # fmt: skip
    merged = merge_results([reference, result])
    assert merged["config"]["warm_start_steps"] == 5
    assert merged["full_data"]["fits_per_seed"] == [2]

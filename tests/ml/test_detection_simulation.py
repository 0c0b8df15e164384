"""The detection simulator (ml.simulation.detection) on a few tiny synthetic score pages."""

import json

import pytest

from ml.simulate import main as simulate_main
from ml.simulation.detection import simulate_detection, split_pages
from ml.synthetic_scores import make_score_pages

TINY = dict(seeds=[0], initial=1, batch=1, rounds=1, steps=4, tile_size=64)
TINY["strategies"] = ["random", "box_mean"]


@pytest.fixture(scope="module")
def pages_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("scores")
    make_score_pages(root, pages=6, width=480, height=160, seed=0)
    return root


@pytest.fixture(scope="module")
def results(pages_dir):
    return simulate_detection(pages_dir, **TINY)


def test_results_carry_the_classification_keys_in_detection_figures(results):
    for key in ("config", "dataset", "default_strategy", "strategies", "full_data", "curves",
                "labels_to_target", "labels_to_target_per_seed", "labels_to_target_summary",
                "stop_signal_at"):  # fmt: skip
        assert key in results
    assert results["default_strategy"] == "box_mean"
    assert {"map50_mean", "map_mean", "ap_small_mean", "target_map50"} <= set(results["full_data"])
    assert set(results["curves"]) == {"random", "box_mean"}
    assert {"labels", "map50_mean", "map50_std", "boxes_mean"} <= set(results["curves"]["random"])


def test_labels_are_counted_in_pages(results):
    # 6 pages, 2 held out: 1 initial page, then 1 more per round.
    assert results["dataset"]["n_items"] == 6
    for curve in results["curves"].values():
        assert curve["labels"] == [1, 2]
        assert len(curve["per_seed"][0]["picked"][0]) == 1


def test_both_arms_start_from_the_same_pages_and_model(results):
    random, chosen = (results["curves"][a]["per_seed"][0] for a in ("random", "box_mean"))
    assert random["map50"][0] == chosen["map50"][0]
    assert random["boxes"][0] == chosen["boxes"][0]


def test_deterministic_by_seed(pages_dir, results):
    again = simulate_detection(pages_dir, **TINY)
    assert json.dumps(again["curves"]) == json.dumps(results["curves"])


def test_holdout_split_by_page_is_seeded():
    pool, held = split_pages(10, 0.25, seed=3)
    assert len(held) == 2 and len(pool) == 8 and not set(pool) & set(held)
    assert split_pages(10, 0.25, seed=3)[1].tolist() == held.tolist()


def test_cli_entry(pages_dir, tmp_path, capsys):
    out = tmp_path / "results.json"
    code = simulate_main(
        ["--task", "object_detection", "--data", str(pages_dir), "--seeds", "1", "--initial",
         "1", "--batch", "1", "--rounds", "1", "--min-steps", "4", "--tile-size", "64",
         "--strategies", "random,box_max", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    written = json.loads(out.read_text())
    assert written["curves"]["box_max"]["labels"] == [1, 2]
    assert "full data: mAP@0.5" in capsys.readouterr().out


def test_cli_refuses_a_folder_without_annotations(tmp_path):
    args = ["--task", "object_detection", "--data", str(tmp_path), "--quiet"]
    assert simulate_main(args) == 2


def test_the_box_mix_learns_from_the_pages_it_asked_for(tmp_path):
    root = tmp_path / "scores"
    make_score_pages(root, pages=10, width=480, height=160, seed=1)
    # 8 pool pages: 1 at random, then 2 rounds of 3, one of them a random control page.
    results = simulate_detection(
        root,
        **(TINY | {"strategies": ["box_adaptive"], "batch": 3, "rounds": 2}),
        control_fraction=0.34,
    )
    run = results["curves"]["box_adaptive"]["per_seed"][0]
    assert run["labels"] == [1, 4, 7]
    assert [sum(arms.values()) for arms in run["arms"]] == [3, 3]
    assert all(arms["control"] == 1 for arms in run["arms"])
    first, second = run["notes"]
    assert "starting mix" in first
    # The second batch weighs the arms' first pages against the control page.
    assert "worth per pick against random picks" in second
    assert "box_mean 1.0x (from 1 labeled picks)" in second

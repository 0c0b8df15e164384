import pytest

from ml.simulation.pairs import simulate_pairs
from ml.synthetic_faces import make_faces_imagefolder

# A simulation small enough for a unit test: one seed, a tiny model, few steps.
TINY = dict(
    seeds=[0],
    initial=6,
    image_size=16,
    holdout_pairs=20,
    full_data_pairs=30,
    min_steps=4,
    full_data_steps=6,
    model_options={"width": 4, "embedding_dim": 8},
)


def test_a_tiny_pair_simulation_reports_both_arms_against_the_full_data(tmp_path):
    make_faces_imagefolder(tmp_path, identities=8, images_per_identity=4, image_size=16, seed=0)
    result = simulate_pairs(tmp_path, rounds=2, batch=4, **TINY)
    full = result["full_data"]
    assert 0.0 <= full["roc_auc_mean"] <= 1.0 and 0.0 <= full["eer_mean"] <= 1.0
    assert full["target_roc_auc"] == pytest.approx(0.5 + 0.9 * (full["roc_auc_mean"] - 0.5))
    assert result["config"]["n_identities"] == 8
    for arm in ("mixed", "random"):
        curve = result["curves"][arm]
        assert curve["labels"] == [6, 10, 14]
        assert len(curve["roc_auc_mean"]) == 3
        assert all(0.0 <= v <= 1.0 for v in curve["same_fraction_mean"])
        reached = result["labels_to_target"][arm]
        assert reached is None or reached in curve["labels"]
    with pytest.raises(ValueError, match="baseline"):
        simulate_pairs(tmp_path, strategy="random")


def test_ml_simulate_replays_pair_labeling_with_task_pair_verification(tmp_path, capsys):
    from ml.simulate import main

    make_faces_imagefolder(tmp_path / "faces", identities=6, images_per_identity=4, image_size=16)
    out = tmp_path / "pairs.json"

    code = main(
        ["--task", "pair_verification", "--data", str(tmp_path / "faces"), "--seeds", "1",
         "--rounds", "1", "--batch", "4", "--initial", "6", "--image-size", "16",
         "--min-steps", "4", "--out", str(out), "--quiet"]
    )  # fmt: skip

    assert code == 0 and out.exists()
    printed = capsys.readouterr().out
    assert "ROC AUC" in printed and "pairs to target" in printed


def test_the_adaptive_pair_mix_replays_with_its_split_and_reason_per_batch(tmp_path):
    make_faces_imagefolder(tmp_path, identities=8, images_per_identity=4, image_size=16, seed=0)
    result = simulate_pairs(tmp_path, strategy="adaptive", rounds=3, batch=10, **TINY)
    curve = result["curves"]["adaptive"]
    assert curve["labels"] == [6, 16, 26, 36]  # every pick a pair not labeled before
    (notes,), (arms,) = curve["notes_per_seed"], curve["arms_per_seed"]
    assert len(notes) == len(arms) == 3
    assert all(sum(split.values()) == 10 for split in arms)
    assert all(set(split) <= {"pair_mixed", "random"} for split in arms)
    assert notes[0].startswith("split pair_mixed")
    # Once random pairs have answers, the mix says what each arm's picks were worth.
    assert any("against random picks" in n or "taught anything" in n for n in notes[1:])

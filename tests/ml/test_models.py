import pytest
import torch

from ml.models import MLP, SmallCNN, build_model, enable_mc_dropout, load_backbone_weights


@pytest.mark.parametrize("size", [16, 28, 64, 100])
def test_small_cnn_handles_configurable_image_sizes(size):
    model = SmallCNN(num_classes=4, in_channels=1, image_size=size, width=8).eval()
    x = torch.rand(3, 1, size, size)
    assert model(x).shape == (3, 4)
    assert model.embed(x).shape == (3, model.embedding_dim)


def test_forward_is_the_head_applied_to_the_embedding():
    model = SmallCNN(num_classes=3, width=8, seed=0).eval()
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model(x), model.head(model.embed(x)))


def test_mlp_flattens_image_shaped_inputs():
    model = MLP(in_features=64, num_classes=10, hidden=32).eval()
    assert model(torch.rand(5, 1, 8, 8)).shape == (5, 10)
    assert model.embed(torch.rand(5, 64)).shape == (5, 32)


def test_seeded_construction_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = MLP(8, 2, seed=3), MLP(8, 2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(MLP(8, 2, seed=4).head[1].weight, a.head[1].weight)


def test_mc_dropout_gives_varied_predictions_with_frozen_batch_norm():
    model = SmallCNN(num_classes=3, width=8, dropout=0.5, seed=0)
    enable_mc_dropout(model)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not bn.training
    x = torch.rand(4, 3, 32, 32)
    assert not torch.allclose(model(x), model(x))
    with pytest.raises(ValueError):
        enable_mc_dropout(torch.nn.Linear(3, 2))


def test_backbone_weights_load_from_a_local_file_and_skip_the_head(tmp_path):
    source = SmallCNN(num_classes=10, width=8, seed=1)
    path = tmp_path / "backbone.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    target = SmallCNN(num_classes=3, width=8, seed=2)
    report = load_backbone_weights(target, path)
    assert "features.0.weight" in report["loaded"]
    assert "head.1.weight" in report["skipped"]
    torch.testing.assert_close(target.features[0].weight, source.features[0].weight)


def test_backbone_weights_never_come_from_a_hub(tmp_path):
    model = SmallCNN(num_classes=3, width=8)
    with pytest.raises(ValueError, match="local file"):
        load_backbone_weights(model, "https://example.org/weights.pt")
    with pytest.raises(FileNotFoundError):
        load_backbone_weights(model, tmp_path / "missing.pt")
    torch.save({"unrelated": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no parameter"):
        load_backbone_weights(model, tmp_path / "other.pt")


def test_build_model_by_name():
    assert isinstance(build_model("small_cnn", num_classes=2, image_size=32), SmallCNN)
    mlp = build_model("mlp", num_classes=2, in_channels=1, image_size=8)
    assert mlp.in_features == 64
    with pytest.raises(ValueError):
        build_model("resnet", num_classes=2)

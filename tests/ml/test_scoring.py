import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from ml.models import MLP, SmallCNN
from ml.scoring import evaluate, score


@pytest.fixture
def cnn():
    return SmallCNN(num_classes=3, in_channels=1, image_size=16, width=8, dropout=0.5, seed=0)


def test_scores_have_the_documented_shapes_and_types(cnn):
    x = torch.rand(37, 1, 16, 16)
    out = score(cnn, x, batch_size=10)
    assert out.probs.shape == (37, 3) and out.probs.dtype == np.float32
    assert out.embeddings.shape == (37, cnn.embedding_dim) and out.embeddings.dtype == np.float32
    assert out.mc_probs is None
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, rtol=1e-5)


def test_probabilities_match_the_models_own_forward_pass(cnn):
    x = torch.rand(20, 1, 16, 16)
    out = score(cnn, x, batch_size=7)
    with torch.no_grad():
        expected = torch.softmax(cnn.eval()(x), dim=1).numpy()
        embedded = cnn.embed(x).numpy()
    np.testing.assert_allclose(out.probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.embeddings, embedded, rtol=1e-5, atol=1e-6)


def test_batch_size_does_not_change_the_result(cnn):
    x = torch.rand(25, 1, 16, 16)
    a, b = score(cnn, x, batch_size=4), score(cnn, x, batch_size=256)
    np.testing.assert_allclose(a.probs, b.probs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SmallCNN(3, 1, 16, width=8, dropout=0.5, seed=0),
        lambda: MLP(256, 3, hidden=16, dropout=0.5, seed=0),
    ],
)
def test_mc_dropout_samples_vary_are_reproducible_and_centre_on_the_prediction(make):
    model = make()
    x = torch.rand(12, 1, 16, 16)
    out = score(model, x, mc_samples=64, seed=3)
    assert out.mc_probs.shape == (64, 12, 3)
    np.testing.assert_allclose(out.mc_probs.sum(axis=2), 1.0, rtol=1e-5)
    assert out.mc_probs.std(axis=0).mean() > 1e-3
    again = score(model, x, mc_samples=64, seed=3)
    np.testing.assert_array_equal(out.mc_probs, again.mc_probs)
    # Dropout is off for the point prediction, so it does not depend on the MC draws.
    np.testing.assert_array_equal(out.probs, score(model, x).probs)


def test_scoring_restores_the_training_mode(cnn):
    cnn.train()
    score(cnn, torch.rand(4, 1, 16, 16), mc_samples=2)
    assert cnn.training
    assert all(m.training for m in cnn.modules())


def test_datasets_score_like_tensors(cnn):
    x = torch.rand(9, 1, 16, 16)
    from_tensor = score(cnn, x, batch_size=4)
    from_dataset = score(cnn, TensorDataset(x, torch.zeros(9)), batch_size=4)
    np.testing.assert_allclose(from_tensor.probs, from_dataset.probs, rtol=1e-6)


def test_progress_counts_items(cnn):
    seen = []
    score(cnn, torch.rand(10, 1, 16, 16), batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 10), (8, 10), (10, 10)]


def test_empty_input_is_an_error(cnn):
    with pytest.raises(ValueError, match="empty"):
        score(cnn, torch.rand(0, 1, 16, 16))


def test_evaluate_reports_metrics(cnn):
    x, y = torch.rand(8, 1, 16, 16), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    m = evaluate(cnn, x, y, class_names=["a", "b", "c"])
    assert m["n"] == 8 and [c["class"] for c in m["per_class"]] == ["a", "b", "c"]

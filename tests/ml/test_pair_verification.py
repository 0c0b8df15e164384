import numpy as np
import pytest
import torch

from ml.data import ImageFolderDataset, load_tensors
from ml.synthetic_faces import make_faces_imagefolder
from ml.tasks import get_task
from ml.tasks.pair_verification import PairTrainConfig, fit_calibration


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    make_faces_imagefolder(root, identities=6, images_per_identity=6, image_size=32, seed=0)
    x, y = load_tensors(ImageFolderDataset(root, image_size=32))
    return x, y


def balanced_pairs(y, images, k, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(k):
        a = rng.choice(images)
        pool = images[(y[images] == y[a]) & (images != a)] if i % 2 else images[y[images] != y[a]]
        rows.append((a, rng.choice(pool)))
    pairs = np.array(rows)
    return pairs, (y[pairs[:, 0]] == y[pairs[:, 1]]).astype(np.int64)


def test_training_beats_the_untrained_model_on_new_pairs(faces):
    torch.set_num_threads(1)
    x, y = faces
    # Images 0-3 of each identity train, 4-5 are only ever seen in evaluation pairs.
    position = np.concatenate([np.arange(np.sum(y == c)) for c in np.unique(y)])
    train_images, test_images = np.flatnonzero(position < 4), np.flatnonzero(position >= 4)
    train_pairs, train_y = balanced_pairs(y, train_images, 80, seed=0)
    test_pairs = np.array([(a, b) for a in test_images for b in test_images if a < b])
    test_y = (y[test_pairs[:, 0]] == y[test_pairs[:, 1]]).astype(np.int64)
    spec = get_task("pair_verification")
    model = spec.build_model(image_size=32, seed=0, width=8, embedding_dim=32)
    before = spec.evaluate(test_y, spec.predict(model, x[test_pairs])).value
    config = PairTrainConfig(epochs=1, min_steps=40, batch_size=16, seed=0, device="cpu")
    result = spec.train(model, x[train_pairs], train_y, config=config)
    predictions = spec.predict(result.model, x[test_pairs], mc_samples=3)
    evaluation = spec.evaluate(test_y, predictions)
    assert evaluation.metric == "roc_auc"
    assert evaluation.value > before + 0.1
    assert evaluation.value > 0.75
    assert result.calibrated_on == "training pairs"
    n = len(test_pairs)
    assert predictions.probs.shape == (n, 2) and predictions.mc_probs.shape == (3, n, 2)
    assert predictions.extras["mc_distance"].shape == (n, 3)
    np.testing.assert_allclose(predictions.probs.sum(axis=1), 1.0)
    # p(same) falls as the distance grows: the calibration keeps the distance's ranking.
    order = np.argsort(predictions.extras["distance"])
    assert np.all(np.diff(predictions.scores[order]) <= 1e-12)
    inputs = spec.to_acquisition_inputs(predictions.arrays(np.arange(n)))
    assert inputs.n == n and inputs.embeddings.shape == (n, 64)
    # The stored weights carry the calibration.
    copy = spec.load_weights(
        spec.build_model(image_size=32, width=8, embedding_dim=32),
        spec.weights_bytes(result.model, class_names=["different", "same"]),
    )
    np.testing.assert_allclose(
        spec.predict(copy, x[test_pairs[:5]]).scores, predictions.scores[:5], rtol=1e-5
    )


def test_calibration_puts_the_threshold_between_the_kinds():
    rng = np.random.default_rng(0)
    distance = np.concatenate([rng.normal(0.2, 0.05, 200), rng.normal(0.8, 0.05, 200)])
    same = np.r_[np.ones(200), np.zeros(200)]
    a, b = fit_calibration(distance, same)
    assert b < 0
    assert 0.35 < -a / b < 0.65
    a, b = fit_calibration(distance, np.zeros(400))  # only different pairs: still ranks
    assert b < 0 and 1 / (1 + np.exp(-(a + b * 0.5))) < 0.1

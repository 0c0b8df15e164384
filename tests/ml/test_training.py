import numpy as np
import pytest
import torch

from ml.models import MLP, SmallCNN
from ml.training import TrainConfig, train_classifier


def blobs(n_per_class=(60, 60, 8), seed=0, dim=8):
    """Gaussian clusters, one per class; the last class is rare."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2.5, size=(len(n_per_class), dim))
    clusters = zip(centers, n_per_class, strict=True)
    x = np.concatenate([rng.normal(c, 1.0, size=(n, dim)) for c, n in clusters])
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    return torch.tensor(x, dtype=torch.float32), y


def fit(seed=0, **overrides):
    x, y = blobs()
    config = TrainConfig(epochs=8, batch_size=32, lr=0.01, seed=seed, early_stopping_patience=None)
    for key, value in overrides.items():
        setattr(config, key, value)
    return train_classifier(MLP(8, 3, hidden=16, seed=0), x, y, config=config)


def test_training_reduces_the_loss():
    result = fit()
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.class_weights[2] > result.class_weights[0]


def test_training_is_deterministic_by_seed():
    a, b, c = fit(seed=1), fit(seed=1), fit(seed=2)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert [h["loss"] for h in a.history] != [h["loss"] for h in c.history]


def test_training_leaves_the_callers_random_state_alone():
    state = torch.random.get_rng_state()
    fit()
    assert torch.equal(torch.random.get_rng_state(), state)


def test_progress_reports_every_step_out_of_the_planned_total():
    calls = []
    x, y = blobs()
    config = TrainConfig(epochs=3, batch_size=32, early_stopping_patience=None)
    train_classifier(MLP(8, 3), x, y, config=config, progress=lambda *a: calls.append(a))
    steps_per_epoch = int(np.ceil(len(y) / 32))
    assert [c[0] for c in calls] == list(range(1, 3 * steps_per_epoch + 1))
    assert {c[1] for c in calls} == {3 * steps_per_epoch}
    assert all(isinstance(c[2], float) and c[2] > 0 for c in calls)


def test_max_steps_ends_training_mid_epoch_and_is_the_progress_total():
    calls = []
    x, y = blobs()  # 4 steps per epoch
    config = TrainConfig(epochs=3, min_steps=7, max_steps=7, early_stopping_patience=None)
    result = train_classifier(MLP(8, 3), x, y, config=config, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == list(range(1, 8))
    assert {c[1] for c in calls} == {7}
    assert len(result.history) == 2  # a full epoch and three steps of the second


def test_progress_ends_at_the_steps_really_run_when_training_stops_early():
    calls = []
    x, y = blobs()
    vx, vy = blobs(n_per_class=(20, 20, 5), seed=0)
    config = TrainConfig(epochs=40, batch_size=32, early_stopping_patience=1, lr=0.01)
    result = train_classifier(
        MLP(8, 3, seed=0),
        x,
        y,
        val_x=vx,
        val_y=vy,
        config=config,
        progress=lambda *a: calls.append(a),
    )
    assert result.stopped_early
    steps_run = 4 * len(result.history)
    planned = {c[1] for c in calls[:-1]}
    assert planned == {4 * 40}
    assert calls[-1][:2] == (steps_run, steps_run)  # the bar ends full, at the real count
    assert [c[0] for c in calls[:-1]] == list(range(1, steps_run + 1))


def test_warm_start_continues_from_the_weights_it_is_given():
    """Fine-tuning a trained model for a few steps keeps what it learned; the same few steps
    from fresh weights do not get there."""
    x, y = blobs()
    trained = fit(epochs=15).model
    few = TrainConfig(min_steps=4, max_steps=4, lr=0.003, early_stopping_patience=None)

    def first_loss_and_rare_recall(model):
        losses = []
        result = train_classifier(
            model, x, y, config=few, progress=lambda step, total, loss: losses.append(loss)
        )
        pred = result.model(x).argmax(1).numpy()
        return losses[0], (pred[y == 2] == 2).mean()

    warm = MLP(8, 3, hidden=16, seed=1)
    warm.load_state_dict(trained.state_dict())
    warm_loss, warm_recall = first_loss_and_rare_recall(warm)
    cold_loss, cold_recall = first_loss_and_rare_recall(MLP(8, 3, hidden=16, seed=1))
    assert warm_loss < 0.5 * cold_loss
    assert warm_recall >= 0.9 and warm_recall > cold_recall


def test_min_steps_adds_epochs_for_small_label_sets():
    x, y = blobs()  # 128 items: 4 steps per epoch at batch size 32
    config = TrainConfig(epochs=2, min_steps=20, batch_size=32, early_stopping_patience=None)
    result = train_classifier(MLP(8, 3), x, y, config=config)
    assert len(result.history) == 5


def test_early_stopping_keeps_the_best_holdout_epoch():
    x, y = blobs()
    vx, vy = blobs(n_per_class=(20, 20, 5), seed=0)
    config = TrainConfig(epochs=40, batch_size=32, early_stopping_patience=2, lr=0.01)
    result = train_classifier(MLP(8, 3, seed=0), x, y, val_x=vx, val_y=vy, config=config)
    assert result.stopped_early
    assert len(result.history) < 40
    best = max(h["val_balanced_accuracy"] for h in result.history)
    assert result.best_val_balanced_accuracy == best
    assert result.history[result.best_epoch - 1]["val_balanced_accuracy"] == best
    assert not result.model.training


def test_early_stopping_waits_for_the_minimum_of_steps():
    x, y = blobs()  # 4 steps per epoch
    vx, vy = blobs(n_per_class=(20, 20, 5), seed=0)
    base = dict(epochs=40, batch_size=32, early_stopping_patience=1, lr=0.01)
    quick = train_classifier(
        MLP(8, 3, seed=0), x, y, val_x=vx, val_y=vy, config=TrainConfig(**base)
    )
    assert quick.stopped_early and len(quick.history) < 20
    patient = train_classifier(
        MLP(8, 3, seed=0), x, y, val_x=vx, val_y=vy, config=TrainConfig(**base, min_steps=80)
    )
    # Not before 80 steps (20 epochs), and the best epoch's weights are still the ones kept.
    assert len(patient.history) >= 20
    best = max(h["val_balanced_accuracy"] for h in patient.history)
    assert patient.best_val_balanced_accuracy == best


@pytest.mark.parametrize(
    "overrides",
    [
        {"loss": "focal", "class_weighting": "effective"},
        {"balanced_sampling": True, "class_weighting": "none"},
        {"lr_schedule": "constant", "grad_clip": None},
    ],
)
def test_imbalance_options_train_a_usable_model(overrides):
    result = fit(epochs=15, **overrides)
    x, y = blobs()
    pred = result.model(x).argmax(1).numpy()
    assert (pred[y == 2] == 2).mean() >= 0.75  # the rare class is found


def test_cnn_trains_on_image_tensors_with_batch_augmentation():
    torch.manual_seed(0)
    x = torch.rand(24, 1, 16, 16) * 0.2
    y = np.array([0, 1] * 12)
    x[y == 1, :, 4:12, 4:12] += 0.7  # a bright square marks class 1
    config = TrainConfig(epochs=6, batch_size=8, lr=0.01, augment=lambda b: b.flip(3))
    result = train_classifier(SmallCNN(2, 1, 16, width=8, seed=0), x, y, config=config)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.device == "cpu" and result.seconds > 0


def test_unlabeled_or_mismatched_inputs_are_rejected():
    x, y = blobs()
    with pytest.raises(ValueError, match="labeled"):
        train_classifier(MLP(8, 3), x, np.where(y == 0, -1, y), config=TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="labels"):
        train_classifier(MLP(8, 3), x, y[:10], config=TrainConfig(epochs=1))


def test_without_keep_best_epoch_the_holdout_only_watches():
    x, y = blobs()
    vx, vy = blobs(n_per_class=(20, 20, 5), seed=1)
    common = dict(epochs=12, batch_size=32, lr=0.01, early_stopping_patience=None)
    kept = train_classifier(
        MLP(8, 3, seed=0), x, y, val_x=vx, val_y=vy,
        config=TrainConfig(**common, keep_best_epoch=False),
    )  # fmt: skip
    alone = train_classifier(MLP(8, 3, seed=0), x, y, config=TrainConfig(**common))
    # The last epoch's weights, exactly as training without a holdout leaves them.
    kept_state, alone_state = kept.model.state_dict(), alone.model.state_dict()
    assert all(torch.equal(kept_state[k], alone_state[k]) for k in alone_state)
    assert len(kept.history) == 12
    assert kept.best_epoch < 12  # the holdout preferred an earlier epoch, which was not kept
    assert kept.best_val_balanced_accuracy == max(h["val_balanced_accuracy"] for h in kept.history)

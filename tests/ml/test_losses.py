import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ml.losses import FocalLoss, class_weights, make_loss


def test_inverse_weights_are_proportional_to_one_over_count_with_mean_one():
    w = class_weights(np.array([100, 10, 1]), method="inverse")
    assert w.mean() == pytest.approx(1.0)
    assert w[1] / w[0] == pytest.approx(10.0)
    assert w[2] / w[0] == pytest.approx(100.0)


def test_effective_number_weights_match_the_formula_and_are_milder_than_inverse():
    counts = np.array([1000, 50, 5])
    beta = 0.99
    raw = (1 - beta) / (1 - beta**counts)
    eff = class_weights(counts, method="effective", beta=beta)
    np.testing.assert_allclose(eff, raw / raw.mean())
    inv = class_weights(counts, method="inverse")
    assert eff[2] / eff[0] < inv[2] / inv[0]
    assert eff[2] > eff[1] > eff[0]


def test_no_weighting_and_unseen_classes():
    np.testing.assert_array_equal(class_weights(np.array([3, 7]), method="none"), [1.0, 1.0])
    w = class_weights(np.array([10, 0]), method="inverse")
    assert np.isfinite(w).all() and w[1] > w[0]


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        class_weights(np.array([1, 2]), method="sqrt")
    with pytest.raises(ValueError):
        class_weights(np.array([-1, 2]))
    with pytest.raises(ValueError):
        make_loss("hinge")


def test_focal_loss_with_gamma_zero_is_weighted_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 3), torch.randint(0, 3, (16,))
    weight = torch.tensor([0.5, 1.0, 2.0])
    focal = FocalLoss(weight=weight, gamma=0.0)(logits, target)
    assert focal.item() == pytest.approx(F.cross_entropy(logits, target, weight=weight).item())


def test_focal_loss_discounts_easy_examples_more_than_hard_ones():
    target = torch.tensor([0])
    easy, hard = torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    focal, ce = FocalLoss(gamma=2.0), torch.nn.CrossEntropyLoss()
    assert focal(easy, target) / ce(easy, target) < focal(hard, target) / ce(hard, target)
    # Known value: p_true = 0.5 gives (1 - 0.5)^2 * log 2.
    half = torch.tensor([[0.0, 0.0]])
    assert focal(half, target).item() == pytest.approx(0.25 * np.log(2))


def test_make_loss_applies_class_weights():
    logits, target = torch.tensor([[2.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 1])
    l0, l1 = np.log1p(np.exp(-2.0)), np.log1p(np.exp(2.0))
    loss = make_loss("ce", np.array([1.0, 3.0]))
    assert loss(logits, target).item() == pytest.approx((l0 + 3 * l1) / 4, rel=1e-5)
    assert isinstance(make_loss("focal", None), FocalLoss)

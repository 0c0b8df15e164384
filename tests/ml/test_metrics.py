import numpy as np
import pytest
from sklearn import metrics as skm

from ml.metrics import (
    balanced_accuracy,
    classification_metrics,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
)


def one_hot(pred, k):
    p = np.zeros((len(pred), k))
    p[np.arange(len(pred)), pred] = 1.0
    return p


def test_perfect_predictions_score_one_and_zero_calibration_error():
    y = np.array([0, 0, 1, 2, 2, 2])
    m = classification_metrics(y, one_hot(y, 3))
    assert m["balanced_accuracy"] == 1.0
    assert m["macro_f1"] == 1.0
    assert m["accuracy"] == 1.0
    assert m["ece"] == pytest.approx(0.0)
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 1, 0], [0, 0, 3]]


def test_always_predicting_the_majority_class_is_exposed_by_balanced_accuracy():
    y = np.array([0] * 95 + [1] * 5)
    pred = np.zeros(100, dtype=int)
    assert balanced_accuracy(y, pred, 2) == pytest.approx(0.5)
    m = classification_metrics(y, one_hot(pred, 2), class_names=["good", "defect"])
    assert m["accuracy"] == pytest.approx(0.95)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    defect = m["per_class"][1]
    assert defect == {"class": "defect", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 5}


def test_metrics_agree_with_scikit_learn_on_random_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=300)
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 4, size=300))
    assert balanced_accuracy(y, pred, 4) == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert macro_f1(y, pred, 4) == pytest.approx(skm.f1_score(y, pred, average="macro"))
    np.testing.assert_array_equal(confusion_matrix(y, pred, 4), skm.confusion_matrix(y, pred))
    m = classification_metrics(y, one_hot(pred, 4))
    precision, recall, _, support = skm.precision_recall_fscore_support(y, pred)
    assert [c["precision"] for c in m["per_class"]] == pytest.approx(precision)
    assert [c["recall"] for c in m["per_class"]] == pytest.approx(recall)
    assert [c["support"] for c in m["per_class"]] == list(support)


def test_classes_absent_from_the_holdout_do_not_drag_the_averages_down():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1])
    assert balanced_accuracy(y, pred, 5) == 1.0
    assert macro_f1(y, pred, 5) == 1.0


def test_ece_of_an_overconfident_model():
    # Always 90% sure, right half the time: the gap is 0.4.
    y = np.array([0, 1] * 50)
    probs = np.tile([0.9, 0.1], (100, 1))
    assert expected_calibration_error(y, probs) == pytest.approx(0.4)


def test_ece_of_a_calibrated_model_is_small():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1.0, size=20000)
    y = (rng.random(20000) > conf).astype(int)  # class 0 with probability conf
    probs = np.stack([conf, 1 - conf], axis=1)
    assert expected_calibration_error(y, probs) < 0.02


def test_mismatched_inputs_are_rejected():
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), np.ones((3, 2)) / 2)
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), np.ones((2, 2)) / 2, class_names=["a"])


def test_bootstrap_intervals_hold_the_estimate_narrow_with_more_items_and_repeat():
    from ml.metrics import bootstrap_intervals

    rng = np.random.default_rng(0)

    def holdout(n):
        y = rng.integers(0, 3, n)
        pred = np.where(rng.random(n) < 0.7, y, (y + 1) % 3)
        return y, pred

    small, large = holdout(30), holdout(3000)
    small_ci = bootstrap_intervals(*small, 3, seed=1)
    large_ci = bootstrap_intervals(*large, 3, seed=1)
    for name, point in (("balanced_accuracy", balanced_accuracy(*small, 3)),):
        low, high = small_ci[name]
        assert low <= point <= high
    width = lambda ci: ci["balanced_accuracy"][1] - ci["balanced_accuracy"][0]  # noqa: E731
    assert width(large_ci) < width(small_ci) / 4
    assert bootstrap_intervals(*small, 3, seed=1) == small_ci  # the same figure every time


def test_bootstrap_keeps_a_rare_class_in_every_resample():
    from ml.metrics import bootstrap_intervals

    # One rare item, always missed: every resample must still count its recall of 0.
    y = np.array([0] * 99 + [1])
    pred = np.zeros(100, dtype=int)
    ci = bootstrap_intervals(y, pred, 2, seed=0)
    assert ci["balanced_accuracy"] == [0.5, 0.5]


def test_proportion_interval_stays_in_bounds_and_contains_the_share():
    from ml.metrics import proportion_interval

    assert proportion_interval(0, 0) is None
    low, high = proportion_interval(10, 10)
    assert 0.6 < low < 1.0 and high == 1.0
    low, high = proportion_interval(3, 12)
    assert low < 0.25 < high

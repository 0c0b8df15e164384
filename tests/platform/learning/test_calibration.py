"""Calibration of a model version on the holdout, and the one place its temperature
applies: scoring, so predictions and selection see calibrated probabilities while the
model's own stay in the run's arrays."""

import numpy as np
import pytest

from loupe.datasets.models import Item, Split
from loupe.learning.loop import loop_start
from loupe.learning.models import ModelVersion, Prediction, RunStatus, SelectionItem
from loupe.learning.scoring import scoring_arrays
from loupe.tasktypes import classification
from ml.calibration import apply_temperature

pytestmark = pytest.mark.django_db


def _loop(project, capture):
    with capture(execute=True):
        loop, _ = loop_start(project=project)
    loop.refresh_from_db()
    assert loop.status == RunStatus.SUCCEEDED, loop.error
    return loop


def test_a_small_holdout_fits_no_temperature_and_says_so(
    inspection_project, django_capture_on_commit_callbacks
):
    loop = _loop(inspection_project, django_capture_on_commit_callbacks)
    version = ModelVersion.objects.get(project=inspection_project)
    holdout = Item.objects.filter(project=inspection_project, split=Split.HOLDOUT).count()
    assert holdout < classification.CALIBRATION_MIN_HOLDOUT

    calibration = version.metrics["calibration"]
    assert calibration["temperature"] == 1.0 and not calibration["fitted"]
    assert calibration["after"] is None and f"{holdout} items" in calibration["note"]
    assert calibration["before"]["ece"] == pytest.approx(version.metrics["ece"])
    assert sum(b["count"] for b in calibration["before"]["bins"]) == holdout
    # T = 1: the predictions are the model's own probabilities.
    arrays = scoring_arrays(run=loop.scoring_run)
    np.testing.assert_array_equal(arrays.probs, arrays.raw_probs)


def test_the_majority_class_baseline_is_scored_on_the_holdout(
    inspection_project, django_capture_on_commit_callbacks
):
    _loop(inspection_project, django_capture_on_commit_callbacks)
    version = ModelVersion.objects.get(project=inspection_project)

    majority = version.baseline_metrics["majority_class"]
    # "good" is most of the training labels; every class has holdout items.
    assert majority["class"] == "good"
    assert majority["name"] == "always answering good, the majority class"
    assert majority["balanced_accuracy"] == pytest.approx(1 / 4)
    holdout_good = next(c for c in version.metrics["per_class"] if c["class"] == "good")
    assert majority["accuracy"] == pytest.approx(holdout_good["support"] / version.metrics["n"])


def test_a_fitted_temperature_calibrates_what_scoring_writes_and_selection_reads(
    inspection_project, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(classification, "CALIBRATION_MIN_HOLDOUT", 5)
    loop = _loop(inspection_project, django_capture_on_commit_callbacks)
    version = ModelVersion.objects.get(project=inspection_project)

    calibration = version.metrics["calibration"]
    assert calibration["fitted"] and abs(np.log(calibration["temperature"])) > 0.05
    assert calibration["after"]["ece"] >= 0.0 and "cross-fitted" in calibration["note"]
    arrays = scoring_arrays(run=loop.scoring_run)
    expected = apply_temperature(arrays.raw_probs, calibration["temperature"])
    np.testing.assert_allclose(arrays.probs, expected, rtol=1e-5, atol=1e-7)
    assert (arrays.probs.argmax(axis=1) == arrays.raw_probs.argmax(axis=1)).all()
    assert np.abs(arrays.probs - arrays.raw_probs).max() > 0.01
    # The confidence a person sees on a prediction and a pick is the calibrated one.
    calibrated = dict(zip(arrays.item_ids.tolist(), arrays.probs.max(axis=1), strict=True))
    for prediction in Prediction.objects.filter(scoring_run=loop.scoring_run)[:20]:
        assert prediction.confidence == pytest.approx(calibrated[prediction.item_id], abs=1e-6)
    picks = SelectionItem.objects.filter(selection_round=loop.selection_round)
    for pick in picks:
        assert pick.confidence == pytest.approx(calibrated[pick.item_id], abs=1e-6)

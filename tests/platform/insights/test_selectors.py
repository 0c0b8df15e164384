"""Every statistic against numbers counted in the database (see builders.build_world)."""

import math
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from loupe.datasets.models import Item, ItemState
from loupe.insights import selectors
from loupe.labeling.models import Decision, GroundTruth
from loupe.labeling.selectors import agreement_stats
from ml.losses import class_weights
from ml.stopping import cohen_kappa
from tests.platform.insights.builders import build_world, picked

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def by_name(rows, key="name"):
    return {row[key]: row for row in rows}


def test_class_counts_match_the_database(world):
    data = selectors.class_balance(project=world.project)
    rows = by_name(data["classes"])

    for cls in (world.good, world.scratch, world.dent):
        usable = GroundTruth.objects.filter(label_class=cls, needs_review=False).count()
        assert rows[cls.name]["ground_truth"] == usable
    assert (rows["good"]["train"], rows["good"]["holdout"]) == (7, 2)
    assert rows["scratch"]["needs_review"] == 1
    assert (rows["good"]["queued"], rows["scratch"]["queued"]) == (1, 1)
    assert data["unassigned"] == {"queued": 1, "in_annotation": 0}
    assert rows["scratch"]["in_annotation"] == 2
    # The latest scoring (v2) on what is still unlabeled in the pool.
    assert data["model_version"] == 2
    assert [rows[n]["predicted_in_pool"] for n in ("good", "scratch", "dent")] == [6, 2, 0]
    assert (rows["good"]["progress"], rows["good"]["remaining"]) == (0.9, 1)
    assert (rows["scratch"]["progress"], rows["dent"]["progress"]) == (0.6, None)
    states = data["totals"]["states"]
    for state in ItemState.values:
        assert states[state] == Item.objects.filter(project=world.project, state=state).count()
    assert data["totals"]["items"] == 25


def test_pool_predictions_follow_items_leaving_the_pool(world):
    picked(world.project, 3, [(world.pool[6], world.scratch, False)], v=world.v2)
    Item.objects.filter(pk=world.pool[6].pk).update(state=ItemState.QUEUED)

    rows = by_name(selectors.class_balance(project=world.project)["classes"])

    assert rows["scratch"]["predicted_in_pool"] == 1


def test_imbalance_and_the_weights_training_will_use(world):
    data = selectors.imbalance(project=world.project)
    rows = by_name(data["classes"])

    assert [rows[n]["train"] for n in ("good", "scratch", "dent")] == [7, 3, 0]
    assert data["ratio"] == pytest.approx(7 / 3)
    assert (data["majority"], data["minority"], data["empty_classes"]) == (
        "good",
        "scratch",
        ["dent"],
    )
    expected = class_weights(np.array([7, 3, 0]), method="effective", beta=0.999)
    assert [rows[n]["class_weight"] for n in ("good", "scratch", "dent")] == pytest.approx(
        expected.tolist()
    )
    assert rows["good"]["effective_samples"] == pytest.approx((1 - 0.999**7) / 0.001)

    world.project.class_weighting = "inverse"
    world.project.save()
    weights = by_name(selectors.imbalance(project=world.project)["classes"])
    assert weights["scratch"]["class_weight"] / weights["good"]["class_weight"] == (
        pytest.approx(7 / 3)
    )


def test_throughput_per_day_and_per_annotator(world):
    data = selectors.throughput(project=world.project, days=14)

    assert len(data["per_day"]) == 14
    # 9 answers in all; the skip is no answer and bob's oldest is outside the window.
    assert data["annotations_in_window"] == 8
    assert data["labels_in_window"] == 3
    people = by_name(data["annotators"], key="annotator")
    assert (people["alice"]["annotations"], people["alice"]["in_window"]) == (4, 4)
    assert (people["bob"]["annotations"], people["bob"]["in_window"]) == (4, 3)
    assert people["carol"]["annotations"] == 1
    assert sum(d["annotations"] for d in selectors.throughput(
        project=world.project, days=30)["per_day"]) == 9  # fmt: skip


def test_eta_uses_the_pools_predicted_share_when_few_labels_came_in(world):
    data = selectors.eta(project=world.project, days=14)
    rows = by_name(data["classes"])

    # 3 labels in the last 2 days: 1.5 a day.
    assert data["labels_per_day"] == pytest.approx(1.5, rel=1e-3)
    scratch = rows["scratch"]
    assert scratch["hit_rate_basis"] == "predicted share of the pool"
    assert scratch["hit_rate"] == pytest.approx(2 / 8)
    assert (scratch["remaining"], scratch["labels_needed"]) == (2, 8)
    assert scratch["eta_days"] == pytest.approx(8 / 1.5, rel=1e-3)
    assert scratch["message"].startswith("About 8 more labels to find 2 more scratch")
    assert rows["good"]["labels_needed"] == math.ceil(1 / 0.75)
    assert rows["dent"]["remaining"] is None and rows["dent"]["message"].startswith("No target")


def test_eta_uses_the_observed_hit_rate_once_enough_labels_arrived(world, settings):
    from loupe.insights import pace

    pace.MIN_LABELS_FOR_HIT_RATE, old = 3, pace.MIN_LABELS_FOR_HIT_RATE
    try:
        rows = by_name(selectors.eta(project=world.project, days=14)["classes"])
    finally:
        pace.MIN_LABELS_FOR_HIT_RATE = old

    # Of the 3 recent labels 2 are scratch: 3 labels for the 2 missing ones.
    assert rows["scratch"]["hit_rate_basis"] == "recent labels"
    assert rows["scratch"]["hit_rate"] == pytest.approx(2 / 3)
    assert rows["scratch"]["labels_needed"] == 3


def test_a_target_the_pool_cannot_hold_gets_no_date(world):
    world.scratch.target_count = 200
    world.scratch.save()

    data = selectors.eta(project=world.project, days=14)
    scratch = by_name(data["classes"])["scratch"]

    # Left to label: 8 unlabeled, 3 queued, 2 in annotation; v2 predicts 2 of its 8 as scratch.
    assert data["items_left"] == 13
    assert (scratch["remaining"], scratch["predicted_share"]) == (197, 0.25)
    assert scratch["reachable"] is False and scratch["pool_may_hold"] == 3
    assert scratch["labels_needed"] is None
    assert (scratch["eta_days"], scratch["eta_hours"], scratch["eta_date"]) == (None, None, None)
    assert scratch["message"].startswith(
        "The current pool cannot meet the scratch target: 197 more needed, and the 13 items "
        "left may hold about 3 scratch at the 25.0% the model predicts"
    )
    assert by_name(data["classes"])["good"]["reachable"] is True


def test_a_target_out_of_reach_at_the_observed_hit_rate_says_how_many_labels(world):
    from loupe.insights import pace

    world.scratch.target_count = 200
    world.scratch.save()
    pace.MIN_LABELS_FOR_HIT_RATE, old = 3, pace.MIN_LABELS_FOR_HIT_RATE
    try:
        scratch = by_name(selectors.eta(project=world.project, days=14)["classes"])["scratch"]
    finally:
        pace.MIN_LABELS_FOR_HIT_RATE = old

    # 2 of 3 recent labels are scratch: 197 more would take 296 labels, 13 items are left.
    assert scratch["reachable"] is False
    assert "at 66.7% of recent labels it would take about 296 labels" in scratch["message"]


def test_a_pace_of_a_few_hours_is_per_hour_and_the_estimate_in_hours(world):
    now = timezone.now()
    recent = GroundTruth.objects.filter(
        project=world.project, needs_review=False, created_at__gt=now - timedelta(days=5)
    ).exclude(decided_by=Decision.IMPORTED)
    assert recent.count() == 3
    recent.update(created_at=now - timedelta(hours=3))

    data = selectors.eta(project=world.project, days=14)
    scratch = by_name(data["classes"])["scratch"]

    assert data["labels_per_day"] is None and scratch["labels_per_day"] is None
    assert data["labels_per_hour"] == pytest.approx(1.0, rel=1e-3)
    assert data["rate_span_hours"] == pytest.approx(3.0, rel=1e-3)
    assert data["rate_message"] == "3 labels in the last 3.0 hours: 1.0 an hour."
    assert scratch["eta_days"] is None and scratch["eta_date"] is None
    assert scratch["eta_hours"] == pytest.approx(8.0, rel=1e-3)
    assert "(about 8.0 hours of labeling at 1.0 labels an hour)" in scratch["message"]

    # Three labels in ten minutes are taken over an hour at least: three an hour.
    recent.update(created_at=now - timedelta(minutes=10))
    data = selectors.eta(project=world.project, days=14)
    assert data["labels_per_hour"] == pytest.approx(3.0)
    assert data["rate_message"] == "3 labels in the last hour: 3.0 an hour."


def test_no_recent_labels_is_no_pace(world):
    GroundTruth.objects.filter(project=world.project).exclude(decided_by=Decision.IMPORTED).update(
        created_at=timezone.now() - timedelta(days=30)
    )

    data = selectors.eta(project=world.project, days=14)

    assert (data["recent_labels"], data["labels_per_hour"], data["labels_per_day"]) == (0, 0, None)
    assert data["rate_message"] == "No new labels in the last 14 days."
    scratch = by_name(data["classes"])["scratch"]
    assert scratch["labels_needed"] == 8 and scratch["eta_days"] is scratch["eta_hours"] is None


def test_agreement_matches_labelings_own_statistics(world):
    data = selectors.agreement(project=world.project)
    reference = agreement_stats(project=world.project)

    assert data["items_compared"] == reference["items"] == 2
    assert data["pairwise_agreement"] == pytest.approx(reference["pairwise_agreement"])
    assert data["pairwise_agreement"] == pytest.approx(6 / 8)
    classes = by_name(data["classes"])
    for row in reference["classes"]:
        expected = row["specific_agreement"]
        assert classes[row["class"]]["agreement"] == (
            pytest.approx(expected) if expected is not None else None
        )
    people = by_name(data["annotators"], key="annotator")
    assert (people["alice"]["pairs"], people["alice"]["agreement"]) == (3, pytest.approx(2 / 3))
    assert (people["carol"]["items_compared"], people["carol"]["agreement"]) == (1, 1.0)


def test_learning_curve_with_the_random_control_slice(world):
    points = selectors.learning_curve(project=world.project)["versions"]

    assert [p["version"] for p in points] == [1, 2]
    assert [p["labels_used"] for p in points] == [8, 12]
    assert [p["balanced_accuracy"] for p in points] == [0.5, 0.6]
    assert [p["baseline_balanced_accuracy"] for p in points] == [0.4, 0.45]
    # v1 predicted the 3 control picks before they were labeled: right on 2.
    control = points[0]["control"]
    assert (control["n"], control["accuracy"]) == (3, pytest.approx(2 / 3))
    assert control["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert points[1]["control"]["n"] == 0


def test_stopping_signal_compares_versions_on_a_fixed_stop_set(world):
    data = selectors.stopping(project=world.project)

    assert data["available"] and data["versions"] == [1, 2]
    assert data["stop_set_size"] == 8  # the pool items both versions scored
    expected = cohen_kappa(np.zeros(8, dtype=int), np.array([0] * 6 + [1] * 2))
    assert data["kappas"] == [pytest.approx(expected)]
    assert not data["should_stop"] and data["message"]


def test_a_new_project_answers_with_empty_statistics_not_errors(db):
    from loupe.projects.services import project_create

    project = project_create(name="Fresh", created_by=None, classes=["a", "b"])

    assert selectors.class_balance(project=project)["model_version"] is None
    assert selectors.imbalance(project=project)["ratio"] is None
    assert selectors.eta(project=project)["classes"][0]["message"].startswith("No target")
    assert selectors.agreement(project=project)["pairwise_agreement"] is None
    assert selectors.learning_curve(project=project)["versions"] == []
    assert not selectors.stopping(project=project)["available"]
    assert not selectors.drift(project=project)["available"]

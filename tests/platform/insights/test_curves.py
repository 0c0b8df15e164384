"""The learning curve's baselines and the sentence that answers "is the model better than
doing nothing clever?"."""

import pytest

from loupe.insights.curves import baseline_comparison, learning_curve
from loupe.projects.services import project_create
from tests.platform.insights.builders import version

pytestmark = pytest.mark.django_db
CLASSES = ["good", "scratch", "dent"]


@pytest.fixture
def project(db):
    return project_create(name="Curves", created_by=None, classes=CLASSES)


def _holdout(supports):
    return [{"class": c, "support": n} for c, n in zip(CLASSES, supports, strict=True)]


def test_each_version_carries_both_baselines_its_interval_and_calibration(project):
    old = version(project, 1, labels_used=10, bal_acc=0.5, base=0.4)
    old.metrics |= {"per_class": _holdout([6, 3, 0])}  # trained before majority was kept
    old.save()
    new = version(project, 2, labels_used=30, bal_acc=0.8, base=0.45)
    new.metrics |= {
        "per_class": _holdout([6, 3, 3]),
        "intervals": {"balanced_accuracy": [0.7, 0.9]},
        "ece": 0.2,
        "calibration": {"temperature": 1.8, "after": {"ece": 0.05}},
    }
    new.baseline_metrics["majority_class"] = {"name": "always good", "balanced_accuracy": 1 / 3}
    new.save()

    old_point, new_point = learning_curve(project=project)["versions"]

    # One class answered for every item scores 1/k over the k classes the holdout holds.
    assert old_point["majority_balanced_accuracy"] == pytest.approx(1 / 2)
    assert new_point["majority_balanced_accuracy"] == pytest.approx(1 / 3)
    assert new_point["majority_name"] == "always good"
    assert new_point["balanced_accuracy_interval"] == [0.7, 0.9]
    assert (new_point["ece"], new_point["ece_calibrated"], new_point["temperature"]) == (
        0.2,
        0.05,
        1.8,
    )
    assert old_point["temperature"] is None and old_point["balanced_accuracy_interval"] is None


def test_the_sentence_says_clearly_better_only_when_the_interval_clears_both(project):
    v = version(project, 1, labels_used=40, bal_acc=0.8, base=0.45)
    v.metrics |= {"per_class": _holdout([6, 3, 3]), "intervals": {"balanced_accuracy": [0.7, 0.9]}}
    v.metrics["n"] = 12
    v.save()

    verdict = baseline_comparison(learning_curve(project=project)["versions"])

    assert verdict["clearly_better"] and verdict["version"] == 1
    assert "v1, trained on 40 labels" in verdict["message"]
    assert "0.80 (95% interval 0.70–0.90, 12 holdout items)" in verdict["message"]
    assert (
        "clearly better than both always answering one class (0.33) and the linear probe (0.45)."
        in verdict["message"]
    )
    assert "No random control pick it scored has been labeled yet." in verdict["message"]


def test_a_baseline_inside_the_interval_is_not_called_beaten(project):
    v = version(project, 1, labels_used=12, bal_acc=0.55, base=0.5)
    v.metrics |= {"per_class": _holdout([2, 2, 2]), "intervals": {"balanced_accuracy": [0.3, 0.8]}}
    v.save()

    verdict = baseline_comparison(learning_curve(project=project)["versions"])

    assert not verdict["clearly_better"]
    assert verdict["verdicts"] == {"always answering one class": "level", "linear probe": "level"}
    assert (
        "not clearly better than both always answering one class (0.33) and the linear probe"
        " (0.50) on this holdout (their scores lie inside the interval)" in verdict["message"]
    )


def test_baselines_on_either_side_of_the_interval_get_a_clause_each(project):
    v = version(project, 1, labels_used=12, bal_acc=0.5, base=0.7)
    v.metrics |= {"per_class": _holdout([2, 2, 2]), "intervals": {"balanced_accuracy": [0.4, 0.6]}}
    v.save()

    verdict = baseline_comparison(learning_curve(project=project)["versions"])

    assert (
        "clearly better than always answering one class (0.33); worse than the linear probe (0.70)."
        in verdict["message"]
    )


def test_no_sentence_before_a_version_has_holdout_metrics(project):
    assert baseline_comparison(learning_curve(project=project)["versions"]) is None

"""The voting rule and the agreement statistics."""

import pytest

from loupe.datasets.models import ItemState
from loupe.labeling.consensus import (
    Vote,
    class_specific_agreement,
    cohen_kappa,
    decide,
    krippendorff_alpha,
    pairwise_agreement,
)
from loupe.labeling.models import Decision


def votes(*labels):
    return [
        Vote(annotator=f"a{i}", label=label, cancelled=label == "skip")
        if label != "skip"
        else Vote(annotator=f"a{i}", label=None, cancelled=True)
        for i, label in enumerate(labels)
    ]


def test_one_annotator_gives_their_label():
    outcome = decide(votes("cat"), overlap=1)
    assert (outcome.state, outcome.label, outcome.decided_by) == (
        ItemState.LABELED,
        "cat",
        Decision.SINGLE,
    )
    assert outcome.agreement == 1.0 and not outcome.needs_review


def test_majority_wins_with_its_share_as_agreement():
    outcome = decide(votes("dog", "cat", "dog"), overlap=3)
    assert (outcome.label, outcome.decided_by, outcome.votes) == ("dog", Decision.MAJORITY, 3)
    assert outcome.agreement == pytest.approx(2 / 3)
    assert outcome.state == ItemState.LABELED


def test_the_item_waits_until_overlap_annotators_answered():
    outcome = decide(votes("dog", "dog"), overlap=3)
    assert outcome.state == ItemState.IN_ANNOTATION and outcome.label is None


def test_a_tie_needs_review_and_is_not_a_training_label():
    outcome = decide(votes("cat", "dog"), overlap=2)
    assert outcome.needs_review
    assert outcome.state == ItemState.IN_ANNOTATION
    # The tied class voted first is held until a reviewer decides.
    assert outcome.label == "cat"
    assert outcome.agreement == 0.5


def test_skips_are_answers_without_votes():
    assert decide(votes("skip"), overlap=1).state == ItemState.SKIPPED
    outcome = decide(votes("skip", "dog", "skip"), overlap=3)
    assert (outcome.label, outcome.decided_by, outcome.votes) == ("dog", Decision.SINGLE, 1)
    tie = decide(votes("cat", "skip", "dog"), overlap=3)
    assert tie.needs_review


def test_krippendorff_alpha_matches_known_values():
    assert krippendorff_alpha([["a", "a"], ["b", "b"], ["a", "a"]]) == pytest.approx(1.0)
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the nominal
    # example: 4 observers, 12 units, missing values; alpha = 0.743.
    units = [
        [1, 1, 1],
        [2, 2, 3, 2],
        [3, 3, 3, 3],
        [3, 3, 3, 3],
        [2, 2, 2, 2],
        [1, 2, 3, 4],
        [4, 4, 4, 4],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [5, 5, 5],
        [1, 1],
        [3],
    ]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=1e-3)
    assert krippendorff_alpha([["a"], ["b"]]) is None
    assert krippendorff_alpha([["a", "a"], ["a", "a"]]) is None


def test_cohen_kappa_and_pairwise_agreement():
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == pytest.approx(0.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert pairwise_agreement([["a", "a", "b"]]) == pytest.approx(2 / 6)
    assert class_specific_agreement([["a", "a", "b"], ["b", "b"]], "b") == pytest.approx(2 / 4)

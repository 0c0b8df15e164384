""" "An annotator's latest vote" means one thing everywhere: the ground truth, the review,
the agreement statistics and the agreement votes the database keeps all pick the same
answer on the tricky cases (a vote replaced by a skip or by an unknown class, answers
without Label Studio's time, ties of time), on SQLite and on PostgreSQL. And a review that
settles a round's last open item completes the round."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from loupe.datasets.models import Item, ItemState
from loupe.labeling.consensus import ground_truth_recompute, votes_of
from loupe.labeling.models import AgreementVote, Annotation, GroundTruth
from loupe.labeling.selectors import agreement_stats
from loupe.labeling.services import ground_truth_review
from loupe.learning.models import SelectionRound
from tests.factories import ItemFactory
from tests.platform.labeling.builders import labeling_project, selection_round

pytestmark = pytest.mark.django_db

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CREATED = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # when Loupe stored the answers


def later(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


# Each case: the answers of one item, in the order Loupe stored them, as (annotator, answer,
# Label Studio's updated_at, Label Studio annotation id, seconds after CREATED that Loupe
# stored it), and the voters' votes the rule gives. An answer is a class name, "skip" or
# "unknown" (a class Loupe does not know).
CASES = {
    "a vote replaced by a later skip": (
        [
            ("ann", "cat", later(0), 11, 0),
            ("bob", "cat", later(1), 12, 1),
            ("eve", "dog", later(2), 13, 2),
            ("ann", "skip", later(60), 14, 3),
        ],
        {"bob": "cat", "eve": "dog"},
    ),
    "a skip replaced by a later vote": (
        [
            ("ann", "skip", later(0), 21, 0),
            ("bob", "dog", later(1), 22, 1),
            ("ann", "dog", later(30), 23, 2),
        ],
        {"ann": "dog", "bob": "dog"},
    ),
    "a vote replaced by a class Loupe does not know": (
        [
            ("ann", "cat", later(0), 31, 0),
            ("bob", "dog", later(1), 32, 1),
            ("eve", "dog", later(2), 33, 2),
            ("ann", "unknown", later(40), 34, 3),
        ],
        {"bob": "dog", "eve": "dog"},
    ),
    # Without Label Studio's time, Loupe's own (a week after the others) places the answer.
    "an answer without Label Studio's time": (
        [
            ("ann", "dog", later(0), 45, 0),
            ("bob", "cat", later(1), 42, 1),
            ("ann", "cat", None, 41, 2),
        ],
        {"ann": "cat", "bob": "cat"},
    ),
    "the same time: the later Label Studio annotation": (
        [
            ("ann", "dog", later(5), 52, 0),
            ("bob", "dog", later(6), 53, 1),
            ("ann", "cat", later(5), 51, 2),
        ],
        {"ann": "dog", "bob": "dog"},
    ),
    "the same time and no Label Studio id: the later stored": (
        [
            ("ann", "dog", later(5), None, 0),
            ("bob", "cat", later(6), None, 0),
            ("ann", "cat", later(5), None, 0),
        ],
        {"ann": "cat", "bob": "cat"},
    ),
    "a later time beats a larger id": (
        [
            ("ann", "cat", later(9.5), 61, 0),
            ("bob", "dog", later(1), 63, 1),
            ("ann", "dog", later(9.25), 62, 2),
        ],
        {"ann": "cat", "bob": "dog"},
    ),
    "annotators Loupe cannot name vote once per Label Studio annotation": (
        [
            ("", "cat", later(0), 71, 0),
            ("", "dog", later(1), 72, 1),
            ("bob", "dog", later(2), 73, 2),
        ],
        {"annotation-71": "cat", "annotation-72": "dog", "bob": "dog"},
    ),
    "one voter left": (
        [
            ("ann", "cat", later(0), 81, 0),
            ("bob", "cat", later(1), 82, 1),
            ("bob", "skip", later(2), 83, 2),
        ],
        {"ann": "cat"},
    ),
}


@pytest.fixture
def answered():
    """The project and, per case, its item; the answers stored as the cases say."""
    project = labeling_project(classes=("cat", "dog"), overlap=2)
    classes = {c.name: c for c in project.classes.all()}
    items = {}
    for name, (answers, _) in CASES.items():
        item = items[name] = ItemFactory(project=project, state=ItemState.IN_ANNOTATION)
        for who, answer, updated_at, ls_id, stored in answers:
            annotation = Annotation.objects.create(
                item=item,
                project=project,
                annotator=who,
                label_class=classes.get(answer),
                was_cancelled=answer == "skip",
                ls_annotation_id=ls_id,
                ls_updated_at=updated_at,
            )
            Annotation.objects.filter(pk=annotation.pk).update(
                created_at=CREATED + timedelta(seconds=stored)
            )
    return project, classes, items


def expected_votes(name) -> dict[str, str]:
    return CASES[name][1]


def test_the_rule_picks_each_voters_latest_answer(answered):
    project, classes, items = answered
    names = {c.pk: n for n, c in classes.items()}
    for name, item in items.items():
        answers = Annotation.objects.filter(item=item).order_by("created_at", "id")
        votes = {
            v.annotator: names[v.label]
            for v in votes_of(answers)
            if not v.cancelled and v.label is not None
        }
        assert votes == expected_votes(name), name


def test_the_votes_the_database_keeps_follow_the_rule(answered):
    project, _, items = answered
    kept: dict[int, dict[str, str]] = {}
    for item_id, who, cls in AgreementVote.objects.filter(project=project).values_list(
        "item_id", "annotator", "label_class__name"
    ):
        kept.setdefault(item_id, {})[who] = cls
    # Only items with two or more voters carry pairs to agree on.
    assert kept == {
        item.pk: expected_votes(name)
        for name, item in items.items()
        if len(expected_votes(name)) >= 2
    }


def test_the_agreement_statistics_count_the_same_votes(answered):
    project, _, _ = answered
    units = [list(v.values()) for _, v in CASES.values() if len(v) >= 2]
    per_annotator = Counter(who for _, v in CASES.values() for who in v)

    stats = agreement_stats(project=project)

    assert (stats["items"], stats["annotations"]) == (len(units), sum(map(len, units)))
    assert {c["class"]: c["votes"] for c in stats["classes"]} == {
        "cat": sum(u.count("cat") for u in units),
        "dog": sum(u.count("dog") for u in units),
    }
    assert {a["annotator"]: a["annotations"] for a in stats["annotators"]} == per_annotator


def test_ground_truth_counts_the_same_votes(answered):
    project, classes, items = answered
    ground_truth_recompute(project=project, item_ids=[i.pk for i in items.values()])
    truths = {
        g.item_id: (g.label_class.name, g.num_annotators, g.needs_review)
        for g in GroundTruth.objects.filter(project=project).select_related("label_class")
    }
    for name, item in items.items():
        votes = list(expected_votes(name).values())
        (winner, top), *rest = Counter(votes).most_common()
        label, num_annotators, needs_review = truths[item.pk]
        assert (num_annotators, needs_review) == (len(votes), bool(rest) and rest[0][1] == top)
        if not needs_review:
            assert label == winner, name


def test_the_review_counts_the_same_votes(answered):
    project, _, items = answered
    for name, item in items.items():
        votes = list(expected_votes(name).values())
        truth = ground_truth_review(item=Item.objects.get(pk=item.pk), label_class_name="dog")
        assert truth.num_annotators == len(votes), name
        assert truth.agreement == pytest.approx(votes.count("dog") / len(votes)), name


def test_resolving_the_last_tie_of_a_round_completes_it():
    project = labeling_project(classes=("cat", "dog"), overlap=2)
    done, tie = ItemFactory(project=project), ItemFactory(project=project)
    round_ = selection_round(project, [done, tie])
    SelectionRound.objects.filter(pk=round_.pk).update(status=SelectionRound.Status.PUSHED)
    cat, dog = project.classes.order_by("order")
    for item, (first, second) in ((done, (cat, cat)), (tie, (cat, dog))):
        for n, cls in enumerate((first, second)):
            Annotation.objects.create(
                item=item,
                project=project,
                annotator=f"annotator-{n}",
                label_class=cls,
                ls_annotation_id=item.pk * 10 + n,
                ls_updated_at=later(n),
            )
    ground_truth_recompute(project=project, item_ids=[done.pk, tie.pk])
    assert Item.objects.get(pk=tie.pk).state == ItemState.IN_ANNOTATION
    round_.refresh_from_db()
    assert round_.status == SelectionRound.Status.PUSHED

    ground_truth_review(item=Item.objects.get(pk=tie.pk), label_class_name="dog")

    round_.refresh_from_db()
    assert round_.status == SelectionRound.Status.COMPLETE

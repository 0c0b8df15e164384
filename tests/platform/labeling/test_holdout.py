"""The project's fixed holdout: assigned once when an item enters ground truth, never moved,
with a minimum per class, and every label either trains or measures."""

import pytest

from loupe.datasets.models import Item, ItemState, Split
from loupe.labeling.consensus import ground_truth_recompute
from loupe.labeling.models import Annotation, GroundTruth
from loupe.labeling.services import ground_truth_review
from tests.factories import ItemFactory
from tests.platform.labeling.builders import labeling_project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_loop(monkeypatch):
    monkeypatch.setattr("loupe.learning.loop.loop_trigger_on_labels", lambda **kw: None)


def label(project, items, class_name, *, annotator="expert"):
    label_class = project.classes.get(name=class_name)
    for item in items:
        Annotation.objects.create(
            item=item, label_class=label_class, annotator=annotator, ls_annotation_id=None
        )
        Item.objects.filter(pk=item.pk).update(state=ItemState.IN_ANNOTATION)
    ground_truth_recompute(project=project, item_ids=[i.pk for i in items])


def splits(items) -> dict[int, str]:
    return dict(Item.objects.filter(pk__in=[i.pk for i in items]).values_list("id", "split"))


def test_labels_join_train_or_holdout_and_never_move():
    project = labeling_project(classes=("good", "dent"), holdout_fraction=0.2)
    first = [ItemFactory(project=project) for _ in range(60)]
    label(project, first, "good")
    before = splits(first)
    assert set(before.values()) <= {Split.TRAIN, Split.HOLDOUT}
    held = sum(s == Split.HOLDOUT for s in before.values())
    assert 5 <= held <= 20  # about a fifth, drawn by content hash

    # More labels, and a relabel of an old item, leave every earlier assignment where it was.
    later = [ItemFactory(project=project) for _ in range(40)]
    label(project, later, "good")
    label(project, first[:5], "dent")  # the expert changes their mind
    assert splits(first) == before
    # Ground truth says the same as the item.
    truths = GroundTruth.objects.filter(item__in=first + later)
    assert all(t.in_holdout == (t.item.split == Split.HOLDOUT) for t in truths)


def test_the_same_item_draws_the_same_split_in_another_project():
    a = labeling_project(classes=("good", "dent"), holdout_fraction=0.3)
    b = labeling_project(classes=("good", "dent"), holdout_fraction=0.3)
    shas = [f"{i:02x}" * 32 for i in range(40)]
    items_a = [ItemFactory(project=a, sha256=sha) for sha in shas]
    items_b = [ItemFactory(project=b, sha256=sha) for sha in shas]
    label(a, items_a, "good")
    label(b, items_b, "good")
    assert [splits(items_a)[i.pk] for i in items_a] == [splits(items_b)[i.pk] for i in items_b]


def test_a_rare_class_gets_its_minimum_holdout_but_its_first_label_trains(settings):
    settings.LOUPE_HOLDOUT_MIN_PER_CLASS = 2
    project = labeling_project(classes=("good", "dent"), holdout_fraction=0.05)
    dents = [ItemFactory(project=project) for _ in range(4)]
    label(project, dents[:1], "dent")
    assert splits(dents[:1])[dents[0].pk] == Split.TRAIN
    label(project, dents[1:], "dent")
    by_split = list(splits(dents).values())
    assert by_split.count(Split.HOLDOUT) == 2 and by_split.count(Split.TRAIN) == 2


def test_a_reviewed_tie_joins_the_holdout_by_the_same_rule(settings):
    settings.LOUPE_HOLDOUT_MIN_PER_CLASS = 1
    project = labeling_project(classes=("good", "dent"), overlap=2, holdout_fraction=0.01)
    trained = ItemFactory(project=project)
    label(project, [trained], "good", annotator="a")
    label(project, [trained], "good", annotator="b")
    tie = ItemFactory(project=project)
    label(project, [tie], "good", annotator="a")
    label(project, [tie], "dent", annotator="b")
    assert splits([tie])[tie.pk] == Split.POOL  # a tie is no label yet
    ground_truth_review(item=Item.objects.get(pk=tie.pk), label_class_name="good")
    # The class has one training label and no holdout yet: the minimum takes this one.
    assert splits([tie])[tie.pk] == Split.HOLDOUT
    assert GroundTruth.objects.get(item=tie).in_holdout


def test_an_undone_label_returns_the_item_to_the_pool():
    project = labeling_project(classes=("good", "dent"), holdout_fraction=0.5)
    items = [ItemFactory(project=project) for _ in range(10)]
    label(project, items, "good")
    Annotation.objects.filter(item__in=items).delete()
    ground_truth_recompute(project=project, item_ids=[i.pk for i in items])
    assert set(splits(items).values()) == {Split.POOL}
    assert not GroundTruth.objects.filter(item__in=items).exists()


def test_an_agreeing_vote_is_no_new_label_for_the_retraining_trigger():
    from loupe.learning.loop import new_labels_since_last_training
    from tests.platform.labeling.builders import model_version

    project = labeling_project(classes=("good", "dent"), overlap=1)
    item = ItemFactory(project=project)
    label(project, [item], "good", annotator="a")
    model_version(project)  # trained after that label
    assert new_labels_since_last_training(project=project) == 0

    label(project, [item], "good", annotator="b")  # agrees: the same label, more votes
    assert GroundTruth.objects.get(item=item).num_annotators == 2
    assert new_labels_since_last_training(project=project) == 0
    label(project, [item], "dent", annotator="c")
    label(project, [item], "dent", annotator="d")  # two against two: a tie, no label
    assert new_labels_since_last_training(project=project) == 0
    label(project, [item], "dent", annotator="e")  # dent wins: a changed label
    assert GroundTruth.objects.get(item=item).label_class.name == "dent"
    assert new_labels_since_last_training(project=project) == 1

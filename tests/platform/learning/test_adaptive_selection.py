"""The default strategy in a project: each batch records how the mix split it and why, each
pick names the strategy that chose it, and the next batch learns from the labels that came
back (an arm whose picks taught nothing loses share)."""

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from loupe.accounts.models import Role
from loupe.datasets.models import ItemState
from loupe.labeling.models import Decision, GroundTruth
from loupe.learning.models import ScoringChunk, ScoringRun, SelectionItem
from loupe.learning.selection import selection_round_create
from loupe.projects.services import project_create
from ml import artifacts
from ml.artifacts import ItemArrays
from ml.strategies.adaptive import DEFAULT_PRIOR
from tests.factories import ItemFactory, MembershipFactory, UserFactory
from tests.platform.insights.builders import version

pytestmark = pytest.mark.django_db

BATCH = 40


@pytest.fixture
def default_project():
    """A project with the default settings and 400 scored pool items of three classes."""
    project = project_create(name="Mix", created_by=None, classes=["good", "scratch", "dent"])
    items = [ItemFactory(project=project) for _ in range(400)]
    rng = np.random.default_rng(0)
    v = version(project, 1, labels_used=30, bal_acc=0.6, base=0.4)
    run = ScoringRun.objects.create(project=project, model_version=v, status="succeeded")
    probs = rng.dirichlet([4.0, 1.0, 1.0], size=len(items)).astype(np.float32)
    artifact = f"scoring/{project.slug}/chunk-0{artifacts.SUFFIX}"
    default_storage.save(
        artifact,
        ContentFile(
            artifacts.save(
                ItemArrays(
                    item_ids=np.array([i.pk for i in items], dtype=np.int64),
                    probs=probs,
                    embeddings=rng.normal(size=(len(items), 8)).astype(np.float32),
                )
            )
        ),
    )
    ScoringChunk.objects.create(
        scoring_run=run, index=0, status="succeeded", artifact=artifact, item_ids=[]
    )
    return project, run


def _label(picks, *, right_for: set[str]):
    """Ground truth for a round's picks: the model's own guess for the arms in `right_for`
    (their picks taught nothing), another class for the rest."""
    classes = list(picks[0].selection_round.project.classes.order_by("order"))
    for pick in picks:
        arm = "control" if pick.is_control else pick.strategy
        label = pick.predicted_class
        if arm not in right_for:
            label = next(c for c in classes if c.pk != pick.predicted_class_id)
        GroundTruth.objects.create(item=pick.item, label_class=label, decided_by=Decision.SINGLE)
        pick.item.state = ItemState.LABELED
        pick.item.save(update_fields=["state"])


def test_a_default_batch_records_its_mix_and_each_picks_strategy(default_project):
    project, run = default_project

    first = selection_round_create(project=project, scoring_run=run, batch_size=BATCH)

    assert first.strategy == "adaptive"
    assert "starting mix" in first.mix["note"]
    assert sum(first.mix["picks"].values()) == BATCH
    picks = list(first.items.all())
    arms = {p.strategy for p in picks if not p.is_control}
    assert arms <= set(DEFAULT_PRIOR) and len(arms) >= 3
    assert {p.strategy for p in picks if p.is_control} == {"random"}
    assert sum(p.is_control for p in picks) == first.mix["picks"]["control"] == 4
    discovery = [p for p in picks if p.strategy == "discovery"]
    assert discovery and all("none of which is labeled" in p.reason for p in discovery)


def test_the_next_batch_moves_share_away_from_an_arm_whose_picks_taught_nothing(
    default_project,
):
    project, run = default_project
    first = selection_round_create(project=project, scoring_run=run, batch_size=BATCH)
    picks = list(first.items.select_related("item", "selection_round__project"))
    # Hybrid's picks were all what the model said; the others' picks, and the random
    # control slice, corrected it.
    _label(picks, right_for={"hybrid"})

    second = selection_round_create(project=project, scoring_run=run, batch_size=BATCH)

    before = first.mix["picks"]["hybrid"]
    after = second.mix["picks"].get("hybrid", 0)
    assert after < before
    assert second.mix["relative_yield"]["hybrid"] < 0.8
    assert "hybrid" in second.mix["note"] and "against random picks" in second.mix["note"]
    assert second.mix["class_counts"] == [
        GroundTruth.objects.filter(label_class=c).count() for c in project.classes.order_by("order")
    ]
    assert not SelectionItem.objects.filter(
        selection_round=second, item_id__in=[p.item_id for p in picks]
    ).exists()


def test_the_round_api_says_how_the_batch_was_split(default_project, api_client):
    project, run = default_project
    selection_round = selection_round_create(project=project, scoring_run=run, batch_size=BATCH)
    user = UserFactory(role=Role.ENGINEER)
    MembershipFactory(project=project, user=user, role=Role.ENGINEER)
    api_client.force_authenticate(user)

    body = api_client.get(f"/api/v1/selection-rounds/{selection_round.pk}/").json()

    assert body["mix"]["note"] == selection_round.mix["note"]
    assert sum(body["mix"]["picks"].values()) == BATCH
    assert {i["strategy"] for i in body["items"]} >= {"hybrid", "random"}


def test_the_mix_waits_less_for_a_class_random_picks_never_found(default_project):
    """'dent' is declared but no item is one: while random picks look for it they take half
    the batch; past 150 of them with labels and no dent, less."""
    from loupe.learning.pick_history import random_picks_labeled
    from ml.strategies.adaptive import UNSEEN_CLASS_RANDOM_PICKS

    project, run = default_project
    good, scratch, _dent = project.classes.order_by("order")
    GroundTruth.objects.create(
        item=ItemFactory(project=project), label_class=good, decided_by=Decision.SINGLE
    )
    GroundTruth.objects.create(
        item=ItemFactory(project=project), label_class=scratch, decided_by=Decision.SINGLE
    )
    rounds = []
    while random_picks_labeled(project=project) <= 1.25 * UNSEEN_CLASS_RANDOM_PICKS:
        assert len(rounds) < 15, "the pool ran out before random picks looked long enough"
        rounds.append(selection_round_create(project=project, scoring_run=run, batch_size=BATCH))
        for pick in rounds[-1].items.select_related("item"):
            label = scratch if pick.predicted_class_id == scratch.pk else good
            GroundTruth.objects.create(
                item=pick.item, label_class=label, decided_by=Decision.SINGLE
            )
            pick.item.state = ItemState.LABELED
            pick.item.save(update_fields=["state"])

    def random_share(selection_round):
        picks = selection_round.mix["picks"]
        return (picks.get("random", 0) + picks["control"]) / BATCH

    waiting = [r for r in rounds if "no label yet, so random picks take 50%" in r.mix["note"]]
    assert waiting and all(random_share(r) >= 0.5 for r in waiting)
    after = selection_round_create(project=project, scoring_run=run, batch_size=BATCH)
    assert len(after.items.all()) == BATCH
    assert "still has no label after" in after.mix["note"]
    assert "less the longer they miss it" in after.mix["note"]
    assert random_share(after) < min(random_share(r) for r in waiting)


def test_a_strategy_that_does_not_learn_from_earlier_batches_skips_reading_them(
    default_project, monkeypatch
):
    """Reading back what earlier picks taught costs queries (and, for pages of boxes, a
    matching per page); a single strategy such as margin never looks at it."""
    from loupe.learning import selection

    project, run = default_project
    project.strategy = "margin"
    project.save()

    def unwanted(**kwargs):
        raise AssertionError("margin read the pick history")

    monkeypatch.setattr(selection, "pick_history", unwanted)
    monkeypatch.setattr(selection, "random_picks_labeled", unwanted)
    chosen = selection_round_create(project=project, scoring_run=run, batch_size=BATCH)
    assert chosen.items.count() == BATCH
    assert chosen.strategy == "margin"


def test_a_classification_mix_reads_its_picks_by_class_without_asking_for_pick_values(
    default_project, monkeypatch
):
    """Only a task type that values its picks itself (pages of boxes) is asked; the mix of
    a classification project still learns from its labeled picks."""
    from loupe.tasktypes.classification import ImageClassification

    project, run = default_project
    first = selection_round_create(project=project, scoring_run=run, batch_size=BATCH)
    _label(list(first.items.select_related("item", "selection_round__project")), right_for=set())

    def unwanted(self, **kwargs):
        raise AssertionError("a classification project was asked for pick values")

    monkeypatch.setattr(ImageClassification, "pick_values", unwanted)
    second = selection_round_create(project=project, scoring_run=run, batch_size=BATCH)
    assert "against random picks" in second.mix["note"]

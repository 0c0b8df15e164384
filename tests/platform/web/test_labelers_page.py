"""The page for the people who label: the strategy in plain words, why they see the items
of the batch, where the model is confused, and how their agreement compares."""

import numpy as np
import pytest
from django.test import Client
from django.utils.html import escape

from loupe.accounts.models import Role
from loupe.insights.labelers import STRATEGY_WORDS
from loupe.labeling.models import Annotation
from loupe.learning.models import ModelVersion, SelectionItem
from loupe.learning.selection import pick_reason
from tests.factories import ItemFactory, MembershipFactory, UserFactory
from tests.platform.labeling.builders import labeling_project, model_version, selection_round

pytestmark = pytest.mark.django_db

NAMES = ["good", "scratch", "dent"]


def client_as(project, role, username=None):
    user = UserFactory(role=role, **({"username": username} if username else {}))
    MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client, user


def page(client, project) -> str:
    response = client.get(f"/projects/{project.slug}/labeling/")
    assert response.status_code == 200
    return response.content.decode()


def test_every_member_sees_the_page_and_outsiders_do_not():
    project = labeling_project(classes=NAMES)
    for role in (Role.EXPERT, Role.MANAGER, Role.ENGINEER):
        client, _ = client_as(project, role)
        assert 'id="strategy"' in page(client, project)
    outsider = Client()
    outsider.force_login(UserFactory(role=Role.EXPERT))
    assert outsider.get(f"/projects/{project.slug}/labeling/").status_code == 404


def test_the_strategy_is_said_in_plain_words():
    project = labeling_project(classes=NAMES, strategy="margin", control_fraction=0.2)
    client, _ = client_as(project, Role.EXPERT)

    html = page(client, project)

    assert escape(STRATEGY_WORDS["margin"]) in html
    assert "About 20 items in 100 of each batch are random checks" in html
    # The default strategy is named by what it does, not by its code name.
    default = labeling_project(classes=NAMES)
    client, _ = client_as(default, Role.EXPERT)
    assert escape(STRATEGY_WORDS["adaptive"]) in page(client, default)


def test_the_batch_is_counted_by_why_its_items_were_picked():
    project = labeling_project(classes=NAMES)
    items = ItemFactory.create_batch(6, project=project)
    selection = selection_round(project, items, version=model_version(project))
    counts = {"good": 50, "scratch": 50, "dent": 50}
    probs = [
        [0.1, 0.48, 0.42],  # hesitates between scratch and dent
        [0.05, 0.41, 0.54],  # the same two, the other way round
        [0.2, 0.45, 0.35],  # and again
        [0.58, 0.22, 0.2],  # unsure: best guess good
        [0.9, 0.05, 0.05],  # control
        [0.1, 0.2, 0.7],  # control
    ]
    for pick, p in zip(selection.items.order_by("rank"), probs, strict=True):
        control = pick.rank > 4
        pick.reason = pick_reason(
            np.array(p), NAMES, control=control, labels_used=300, class_counts=counts
        )
        pick.is_control = control
        pick.save()
    client, _ = client_as(project, Role.EXPERT)

    html = page(client, project)

    assert "Of the 6 items in the current batch" in html
    assert "<b>3</b>because the model hesitates between dent and scratch" in html
    assert "<b>2</b>random checks, to see how the model does on ordinary items" in html
    assert "<b>1</b>because the model is unsure (its best guess: good)" in html
    assert 'id="early-model"' not in html
    # An early model is named once for the batch.
    SelectionItem.objects.filter(selection_round=selection, rank=1).update(
        reason=pick_reason(np.array(probs[0]), NAMES, control=False, labels_used=40)
    )
    assert "trained on 40 labels: its guesses are rough" in page(client, project)


def test_the_confusion_matrix_is_said_in_words():
    project = labeling_project(classes=NAMES)
    version = model_version(project)
    ModelVersion.objects.filter(pk=version.pk).update(
        metrics={"confusion_matrix": [[9, 1, 0], [0, 10, 0], [0, 4, 6]]}
    )
    client, _ = client_as(project, Role.EXPERT)

    html = page(client, project)

    assert "checked on the 30 holdout items" in html
    first = html.index("it mistakes dent for scratch 4 times out of 10 on the holdout")
    second = html.index("it mistakes good for scratch 1 time out of 10 on the holdout")
    assert first < second  # the most frequent mistake first
    assert "<b>scratch</b> best (100% right) and <b>dent</b> worst (60% right)" in html


def test_a_labelers_agreement_is_compared_with_the_others():
    project = labeling_project(classes=("cat", "dog"), overlap=3)
    client, me = client_as(project, Role.EXPERT, username="ann")
    items = ItemFactory.create_batch(4, project=project)
    classes = {c.name: c for c in project.classes.all()}
    answers = {
        "ann": ["cat", "cat", "dog", "dog"],
        "bob": ["cat", "cat", "dog", "cat"],
        "cyd": ["cat", "dog", "dog", "dog"],
    }
    ls_id = 0
    for who, labels in answers.items():
        for item, label in zip(items, labels, strict=True):
            ls_id += 1
            Annotation.objects.create(
                item=item,
                project=project,
                label_class=classes[label],
                annotator=who,
                user=me if who == "ann" else None,
                ls_annotation_id=ls_id,
            )

    html = page(client, project)

    # Ann agrees with the other annotator in 6 of her 8 pairs; the team in 8 of 12.
    assert "On the 4 items you and others both labeled" in html
    assert "in <b>75%</b> of cases; across the team it is <b>67%</b>" in html
    assert '<tr class="you"><td>ann (you)</td>' in html
    assert "<td>bob</td>" in html


def test_a_page_without_batches_models_or_overlap_says_so():
    project = labeling_project(classes=NAMES)
    client, _ = client_as(project, Role.EXPERT)

    html = page(client, project)

    assert "No batch has been picked yet." in html
    assert "No model has been trained yet." in html
    assert "each item goes to one annotator in this project" in html


def test_a_mixed_batch_says_how_it_was_split_and_why_its_picks_were_made():
    project = labeling_project(classes=NAMES)
    items = ItemFactory.create_batch(3, project=project)
    selection = selection_round(project, items, version=model_version(project))
    note = (
        "split hybrid 50%, discovery 30%, random 20%; worth per pick against random picks:"
        " hybrid 2.0x (18 picks), discovery 0.5x (6 picks)"
    )
    selection.mix = {"note": note, "picks": {"discovery": 2, "random": 1, "control": 0}}
    selection.save()
    p = np.array([0.7, 0.2, 0.1])
    reasons = [
        pick_reason(p, NAMES, control=False, labels_used=300, arm="discovery"),
        pick_reason(p, NAMES, control=False, labels_used=300, arm="discovery"),
        pick_reason(p, NAMES, control=False, labels_used=300, arm="random"),
    ]
    for pick, reason in zip(selection.items.order_by("rank"), reasons, strict=True):
        pick.reason, pick.is_control = reason, False
        pick.save()
    client, _ = client_as(project, Role.EXPERT)

    html = page(client, project)

    assert (
        "This batch: 2 items from kinds of image nobody has labeled yet and 1 item picked at"
        " random." in html
    )
    assert "<b>2</b>from groups of similar images that nobody has labeled yet" in html
    assert "<b>1</b>picked at random to explore" in html
    assert "random checks, to see how the model does on ordinary items" not in html

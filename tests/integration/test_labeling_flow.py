"""Loupe and a real Label Studio: sync a project, push a round with predictions, let an
expert annotate through the SDK, receive Label Studio's webhooks on a live Loupe server,
then lose webhooks and let reconciliation bring back everything."""

from __future__ import annotations

import pytest

from loupe.datasets.models import Item, ItemState, Split
from loupe.labeling import adapter, reconcile
from loupe.labeling.ls_payloads import choices_result
from loupe.labeling.models import Annotation, GroundTruth
from loupe.labeling.services import project_reconcile, round_selected, selection_round_push
from loupe.learning.models import SelectionRound
from tests.integration.labelstudio_server import free_port, wait_until
from tests.platform.labeling.builders import (
    items_with_files,
    labeling_project,
    model_version,
    selection_round,
)

pytestmark = [pytest.mark.labelstudio, pytest.mark.django_db(transaction=True)]


def labels(items):
    truths = GroundTruth.objects.filter(item__in=items, needs_review=False)
    return {g.item_id: g.label_class.name for g in truths.select_related("label_class")}


def test_labels_flow_back_and_reconciliation_brings_what_webhooks_missed(
    server, client, monkeypatch
):
    project = labeling_project(overlap=1, retrain_every_n_labels=0)
    items = items_with_files(project, 5)
    selection = selection_round(project, items, version=model_version(project))

    round_selected(selection_round=selection)  # the loop's hook; the push runs eagerly

    selection.refresh_from_db()
    project.refresh_from_db()
    assert selection.status == SelectionRound.Status.PUSHED, selection.push_error
    ls_project = client.projects.get(project.ls_project_id)
    assert "Pointed ears mean cat." in ls_project.expert_instruction
    assert ls_project.maximum_annotations == 1
    assert ls_project.model_version == "loupe"
    tasks = sorted(client.tasks.list(project=project.ls_project_id), key=lambda t: t.id)
    assert [t.data["loupe_item_id"] for t in tasks] == [i.pk for i in items]
    assert tasks[0].data["loupe_reason"] == "margin score 1.000"
    assert tasks[0].predictions[0].result == choices_result(["dog"])
    task_of = dict(selection.items.values_list("item_id", "ls_task_id"))
    assert set(Item.objects.values_list("state", flat=True)) == {ItemState.IN_ANNOTATION}

    # The expert submits two labels; Label Studio tells Loupe at once.
    first = client.annotations.create(
        id=task_of[items[0].pk], result=choices_result(["dog"]), lead_time=2.0
    )
    second = client.annotations.create(id=task_of[items[1].pk], result=choices_result(["cat"]))
    assert wait_until(lambda: len(labels(items)) == 2)
    assert labels(items) == {items[0].pk: "dog", items[1].pk: "cat"}
    labeled = Item.objects.get(pk=items[0].pk)
    assert (labeled.state, labeled.split) == (ItemState.LABELED, Split.TRAIN)
    assert Annotation.objects.get(ls_annotation_id=first.id).annotator == server.username

    # Loupe goes away: webhooks now end at a closed port, and nothing else reaches Loupe.
    for hook in client.webhooks.list(project=str(project.ls_project_id)):
        client.webhooks.update(hook.id, url=f"http://127.0.0.1:{free_port()}/gone/")
    client.annotations.create(id=task_of[items[2].pk], result=choices_result(["cat"]))
    client.annotations.create(id=task_of[items[3].pk], result=[], was_cancelled=True)
    client.annotations.update(first.id, result=choices_result(["cat"]))
    client.annotations.delete(second.id)
    client.tasks.delete(task_of[items[4].pk])  # an empty task, removed by a project manager
    assert labels(items) == {items[0].pk: "dog", items[1].pk: "cat"}

    outcome = project_reconcile(project=project, full=False)
    assert outcome["full"] is False and outcome["applied"] == 3
    assert labels(items) == {items[0].pk: "cat", items[1].pk: "cat", items[2].pk: "cat"}
    assert Item.objects.get(pk=items[3].pk).state == ItemState.SKIPPED

    # Deletions show only in a full listing (here without the margin for recent changes).
    monkeypatch.setattr(reconcile, "FULL_LISTING_MARGIN", reconcile.timedelta(0))
    outcome = project_reconcile(project=project, full=True)
    assert (outcome["deleted"], outcome["tasks_deleted"]) == (1, 1)
    # The item of the deleted task is back in the pool, free to be picked again.
    assert Item.objects.get(pk=items[4].pk).state == ItemState.UNLABELED
    assert selection.items.get(item=items[4]).ls_task_id is None
    assert labels(items) == {items[0].pk: "cat", items[2].pk: "cat"}
    assert Item.objects.get(pk=items[1].pk).state == ItemState.IN_ANNOTATION
    in_label_studio = {
        a["id"] if isinstance(a, dict) else a.id
        for t in client.tasks.list(project=project.ls_project_id, fields="all")
        for a in t.annotations or []
    }
    assert set(Annotation.objects.values_list("ls_annotation_id", flat=True)) == in_label_studio
    assert len(in_label_studio) == 3
    # Nothing changed since: another pass finds nothing new.
    assert project_reconcile(project=project, full=False)["applied"] == 0


def test_pushing_again_never_makes_a_second_task(server, client):
    project = labeling_project()
    items = items_with_files(project, 3, seed=20)
    selection = selection_round(project, items)
    selection_round_push(selection_round=selection)
    ids = dict(selection.items.values_list("item_id", "ls_task_id"))

    # As if the worker died after creating the tasks but before saving the round.
    SelectionRound.objects.filter(pk=selection.pk).update(status=SelectionRound.Status.DRAFT)
    selection.refresh_from_db()
    selection_round_push(selection_round=selection)

    assert dict(selection.items.values_list("item_id", "ls_task_id")) == ids
    assert len(list(client.tasks.list(project=project.ls_project_id))) == 3


def test_a_push_while_label_studio_is_down_succeeds_once_it_is_back(server, settings):
    project = labeling_project()
    selection = selection_round(project, items_with_files(project, 2, seed=30))
    settings.LABEL_STUDIO_URL = f"http://127.0.0.1:{free_port()}"
    settings.LABEL_STUDIO_MAX_RETRIES = 0

    with pytest.raises(adapter.LabelStudioUnavailable):
        selection_round_push(selection_round=selection)
    selection.refresh_from_db()
    assert selection.status == SelectionRound.Status.DRAFT and selection.push_error

    settings.LABEL_STUDIO_URL = server.url
    selection_round_push(selection_round=selection)
    selection.refresh_from_db()
    assert (selection.status, selection.push_error, selection.push_attempts) == ("pushed", "", 2)

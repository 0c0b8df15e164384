"""The label-error review queue against a real Label Studio: sending it makes review tasks
there, and the experts' answers come back as confirmed or corrected labels."""

from __future__ import annotations

import pytest

from loupe.labeling import review
from loupe.labeling.ls_payloads import choices_result
from loupe.labeling.models import Decision, GroundTruth
from loupe.learning.label_suspects import label_suspects_scan
from loupe.learning.models import SelectionRound
from tests.integration.labelstudio_server import wait_until
from tests.platform.labeling.review_builders import suspect_world

pytestmark = [pytest.mark.labelstudio, pytest.mark.django_db(transaction=True)]


def test_sending_the_queue_makes_review_tasks_and_answers_are_recorded(server, client):
    world = suspect_world(files=True, trained_on=12)
    label_suspects_scan(model_version=world.version)

    selection = review.label_review_send(project=world.project)  # pushed after commit

    selection.refresh_from_db()
    world.project.refresh_from_db()
    assert selection.status == SelectionRound.Status.PUSHED, selection.push_error
    tasks = {
        t.data["loupe_item_id"]: t
        for t in client.tasks.list(project=world.project.ls_project_id, fields="all")
    }
    assert set(tasks) == {world.flipped.pk, world.in_sample_flip.pk}
    sent_back = tasks[world.flipped.pk]
    assert sent_back.data["loupe_round_id"] == selection.pk
    assert sent_back.data["loupe_reason"].startswith("sent back for review: labeled dent")
    # The task opens on the label under review.
    assert sent_back.predictions[0].result == choices_result(["dent"])

    # The expert keeps one label and corrects the other; webhooks bring both back.
    client.annotations.create(id=sent_back.id, result=choices_result(["dent"]))
    client.annotations.create(id=tasks[world.in_sample_flip.pk].id, result=choices_result(["good"]))
    assert wait_until(lambda: review.review_rounds(project=world.project)[0]["pending"] == 0), (
        review.review_rounds(project=world.project)
    )

    (outcome,) = review.review_rounds(project=world.project)
    assert (outcome["confirmed"], outcome["corrected"]) == (1, 1)
    assert outcome["status"] == SelectionRound.Status.COMPLETE
    corrected = GroundTruth.objects.get(item=world.in_sample_flip)
    assert (corrected.label_class.name, corrected.decided_by) == ("good", Decision.REVIEW)
    assert GroundTruth.objects.get(item=world.flipped).label_class.name == "dent"

"""Pushing rounds and syncing projects: our own logic, with Label Studio mocked or away."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loupe.datasets.models import Item, ItemState
from loupe.errors import ApplicationError
from loupe.labeling import sync
from loupe.labeling.ls_payloads import choices_result
from loupe.labeling.models import Annotation, LabelStudioSync
from loupe.labeling.services import (
    project_sync,
    round_selected,
    rounds_push_pending,
    selection_round_push,
)
from loupe.learning.models import SelectionRound
from loupe.projects.services import label_classes_set
from tests.platform.labeling.builders import (
    items_with_files,
    labeling_project,
    model_version,
    selection_round,
)
from workers import labeling as labeling_tasks

pytestmark = pytest.mark.django_db


class FakeLabelStudio:
    """Records what Loupe asks of the adapter; task ids count up from 500."""

    def __init__(self, monkeypatch):
        self.pushes, self.projects, self.webhooks = [], [], []
        monkeypatch.setattr(sync.adapter, "project_ensure", self.project_ensure)
        monkeypatch.setattr(sync.adapter, "local_storage_ensure", lambda *a, **k: 1)
        monkeypatch.setattr(sync.adapter, "webhook_ensure", self.webhook_ensure)
        monkeypatch.setattr(sync.adapter, "tasks_push", self.tasks_push)

    def project_ensure(self, client, **kwargs):
        self.projects.append(kwargs)
        return kwargs.get("ls_project_id") or 7

    def webhook_ensure(self, client, **kwargs):
        self.webhooks.append(kwargs)
        return 1

    def tasks_push(self, client, project_id, tasks):
        self.pushes.append((project_id, list(tasks)))
        return {t.item_id: 500 + i for i, t in enumerate(tasks)}


@pytest.fixture
def fake(monkeypatch):
    return FakeLabelStudio(monkeypatch)


def test_push_sends_picks_in_rank_order_with_predictions_and_reasons(fake, settings):
    settings.LOUPE_PUBLIC_URL = "http://loupe.example"
    project = labeling_project()
    items = items_with_files(project, 3)
    version = model_version(project)
    selection = selection_round(project, [items[2], items[0], items[1]], version=version)

    selection_round_push(selection_round=selection)

    ((ls_project, tasks),) = fake.pushes
    assert ls_project == 7
    assert [t.item_id for t in tasks] == [items[2].pk, items[0].pk, items[1].pk]
    first = tasks[0]
    assert first.round_id == selection.pk
    assert first.image == f"/data/local-files/?d={items[2].file.name}"
    assert first.reason == "margin score 1.000"
    # One model version name in Label Studio for every round; the task names Loupe's version.
    assert first.prediction.model_version == "loupe"
    assert first.model_version == "loupe-v1"
    assert first.prediction.result == choices_result(["dog"])
    assert first.prediction.score == pytest.approx(0.51)
    selection.refresh_from_db()
    project.refresh_from_db()
    assert selection.status == SelectionRound.Status.PUSHED and selection.push_attempts == 1
    assert project.ls_project_id == 7
    assert list(selection.items.order_by("rank").values_list("ls_task_id", flat=True)) == [
        500,
        501,
        502,
    ]
    assert set(Item.objects.values_list("state", flat=True)) == {ItemState.IN_ANNOTATION}
    (hook,) = fake.webhooks
    assert hook["url"] == "http://loupe.example/api/v1/labeling/webhook/"
    assert hook["secret_header"] == ("X-Loupe-Webhook-Secret", settings.LABEL_STUDIO_WEBHOOK_SECRET)
    config = fake.projects[0]
    assert config["overlap"] == 1
    assert "<p>Pointed ears mean cat.</p>" in config["expert_instruction"]

    selection_round_push(selection_round=selection)  # pushed already: nothing is sent again
    assert len(fake.pushes) == 1


def test_a_cold_start_round_has_no_pre_annotation(fake):
    project = labeling_project()
    selection = selection_round(project, items_with_files(project, 2))
    selection_round_push(selection_round=selection)
    assert all(t.prediction is None for t in fake.pushes[0][1])


def test_label_studio_down_leaves_the_round_a_draft_with_the_error(
    django_capture_on_commit_callbacks,
):
    project = labeling_project()
    selection = selection_round(project, items_with_files(project, 2))

    with django_capture_on_commit_callbacks(execute=True):
        round_selected(selection_round=selection)  # the loop's hook; jobs run eagerly here

    selection.refresh_from_db()
    assert selection.status == SelectionRound.Status.DRAFT
    assert selection.push_attempts == 1
    assert "unreachable" in selection.push_error
    assert set(Item.objects.values_list("state", flat=True)) == {ItemState.QUEUED}
    assert selection.items.filter(ls_task_id__isnull=False).count() == 0
    # The claim is released, so the next attempt is not blocked.
    assert LabelStudioSync.objects.get(project=project).push_claimed_until is None


class Retried(Exception):
    pass


def test_the_push_task_retries_with_exponential_backoff(monkeypatch):
    project = labeling_project()
    selection = selection_round(project, items_with_files(project, 1))
    countdowns = []

    def retry(*, exc, countdown):
        countdowns.append(countdown)
        return Retried()

    monkeypatch.setattr(labeling_tasks.push_round, "retry", retry)
    for retries in range(4):
        labeling_tasks.push_round.push_request(retries=retries, is_eager=False)
        try:
            with pytest.raises(Retried):
                labeling_tasks.push_round.run(selection_round_id=selection.pk)
        finally:
            labeling_tasks.push_round.pop_request()
    assert countdowns == [15, 30, 60, 120]
    selection.refresh_from_db()
    assert (selection.status, selection.push_attempts) == (SelectionRound.Status.DRAFT, 4)
    assert labeling_tasks.push_backoff(20) == labeling_tasks.PUSH_BACKOFF_MAX_S


def test_pending_drafts_are_pushed_again_once_label_studio_is_back(
    fake, django_capture_on_commit_callbacks
):
    project = labeling_project()
    old = selection_round(project, items_with_files(project, 2))
    fresh = selection_round(project, items_with_files(project, 1, seed=9))
    SelectionRound.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(minutes=10), push_error="was down", push_attempts=3
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert rounds_push_pending() == [old.pk]
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, old.push_error, old.push_attempts) == ("pushed", "", 4)
    assert fresh.status == SelectionRound.Status.DRAFT


def test_a_second_push_of_the_project_waits_for_the_first(fake):
    project = labeling_project()
    selection = selection_round(project, items_with_files(project, 1))
    assert sync.claim(project=project, kind="push")
    selection_round_push(selection_round=selection)
    assert fake.pushes == []
    sync.release(project=project, kind="push")
    selection_round_push(selection_round=selection)
    assert len(fake.pushes) == 1


def test_removing_a_class_whose_annotations_reached_loupe_is_refused(fake):
    project = labeling_project(classes=["cat", "dog", "bird"])
    project_sync(project=project)
    (item,) = items_with_files(project, 1)
    label_classes_set(project=project, classes=["cat", "dog"])  # no Loupe labels yet: allowed
    # Meanwhile an expert used the class in Label Studio, and reconciliation pulled it.
    Annotation.objects.create(
        item=item, project=project, result=choices_result(["bird"]), ls_annotation_id=1
    )

    with pytest.raises(ApplicationError, match="bird"):
        project_sync(project=project)
    assert "bird" in LabelStudioSync.objects.get(project=project).synced_classes

    Annotation.objects.all().delete()
    project_sync(project=project)
    assert "bird" not in fake.projects[-1]["label_config"]


def test_a_refused_push_keeps_the_error_without_breaking_the_caller(
    fake, django_capture_on_commit_callbacks
):
    project = labeling_project(classes=["cat"])
    selection = selection_round(project, items_with_files(project, 1))
    project.classes.all().delete()  # a project without classes cannot get a labeling config

    with django_capture_on_commit_callbacks(execute=True):
        round_selected(selection_round=selection)

    selection.refresh_from_db()
    assert selection.status == SelectionRound.Status.DRAFT
    assert "at least one class" in selection.push_error


def test_small_images_of_the_project_are_shown_with_crisp_pixels(fake):
    project = labeling_project()
    items_with_files(project, 2)  # 8 x 8 pixels

    project_sync(project=project)

    (sent,) = fake.projects
    assert 'smoothing="false"' in sent["label_config"]

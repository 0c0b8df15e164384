"""Labels carry their item's project, however they are created."""

import pytest

from loupe.datasets.models import Split
from loupe.labeling.models import Annotation, Decision, GroundTruth
from loupe.projects.services import project_create
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_a_label_saved_without_its_project_takes_the_items():
    project = project_create(name="P", created_by=None, classes=["a", "b"])
    item = ItemFactory(project=project)

    truth = GroundTruth.objects.create(
        item=item, label_class=project.classes.get(name="a"), decided_by=Decision.SINGLE
    )
    answer = Annotation.objects.create(item=item, annotator="x@example.com")

    assert truth.project_id == project.pk
    assert answer.project_id == project.pk
    assert GroundTruth.objects.filter(project=project).count() == 1


def test_a_label_knows_whether_its_item_is_in_the_holdout():
    project = project_create(name="P", created_by=None, classes=["a"])
    a = project.classes.get()
    held = ItemFactory(project=project, split=Split.HOLDOUT)
    trained = ItemFactory(project=project, split=Split.TRAIN)

    for item in (held, trained):
        GroundTruth.objects.create(
            item=item, project=project, label_class=a, decided_by=Decision.IMPORTED
        )

    assert set(GroundTruth.objects.filter(in_holdout=True).values_list("item_id", flat=True)) == {
        held.pk
    }

import pytest

from loupe.errors import ApplicationError
from loupe.labeling.models import Decision, GroundTruth
from loupe.projects.services import label_classes_set, project_create, project_update
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_classes_keep_their_identity_when_reordered():
    project = project_create(name="P", created_by=None, classes=["a", "b"])
    before = {c.name: c.pk for c in project.classes.all()}

    classes = label_classes_set(
        project=project, classes=["b", {"name": "a", "target_count": 9}, "c"]
    )

    assert [c.name for c in classes] == ["b", "a", "c"]
    assert {c.name: c.pk for c in classes if c.name != "c"} == before
    assert classes[1].target_count == 9


def test_a_class_with_labels_cannot_be_removed():
    project = project_create(name="P", created_by=None, classes=["a", "b"])
    item = ItemFactory(project=project)
    GroundTruth.objects.create(
        item=item,
        project=project,
        label_class=project.classes.get(name="a"),
        decided_by=Decision.IMPORTED,
    )

    with pytest.raises(ApplicationError, match="has labels"):
        label_classes_set(project=project, classes=["b"])
    assert project.classes.count() == 2


def test_duplicate_slug_and_unsupported_task_types_are_refused():
    project_create(name="Same", created_by=None)
    with pytest.raises(ApplicationError, match="already exists"):
        project_create(name="Same", created_by=None)
    with pytest.raises(ApplicationError, match="not supported yet"):
        project_create(name="Tracks", created_by=None, task_type="video_tracking")


def test_invalid_settings_are_refused():
    project = project_create(name="P", created_by=None)
    with pytest.raises(ApplicationError, match="control_fraction"):
        project_update(project=project, control_fraction=1.5)
    with pytest.raises(ApplicationError, match="cannot be changed"):
        project_update(project=project, slug="other")

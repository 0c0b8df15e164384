"""The item counts the database keeps per project and state stay equal to a fresh count,
whatever writes the items: the ORM one by one, bulk creation, queryset updates, raw SQL,
deletions, a rolled-back transaction."""

import pytest
from django.db import connection, transaction
from django.db.models import Count

from loupe.counters import recount
from loupe.datasets.counters import ITEM_STATES
from loupe.datasets.models import Item, ItemState, ItemStateCount
from loupe.insights.selectors import project_item_totals, state_counts
from loupe.projects.models import Project
from tests.factories import ItemFactory, ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


def fresh(project) -> dict[str, int]:
    rows = Item.objects.filter(project=project).values_list("state").annotate(n=Count("id"))
    return {state: n for state, n in rows.order_by() if n}


def kept(project) -> dict[str, int]:
    return {state: n for state, n in state_counts(project).items() if n}


def test_counts_follow_every_kind_of_write():
    project, other = ProjectFactory(), ProjectFactory()
    ItemFactory(project=project)
    Item.objects.bulk_create(ItemFactory.build(project=project) for _ in range(30))
    Item.objects.bulk_create(ItemFactory.build(project=other) for _ in range(4))
    assert kept(project) == {ItemState.UNLABELED: 31}

    first_ten = list(Item.objects.filter(project=project).values_list("id", flat=True)[:10])
    Item.objects.filter(pk__in=first_ten).update(state=ItemState.QUEUED)
    Item.objects.filter(pk__in=first_ten[:4]).update(state=ItemState.IN_ANNOTATION)
    item = Item.objects.get(pk=first_ten[0])
    item.state = ItemState.LABELED
    item.save()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE datasets_item SET state = %s WHERE id = %s", [ItemState.SKIPPED, first_ten[9]]
        )
    Item.objects.filter(pk=first_ten[1]).delete()
    # An update that moves nothing between states changes no count.
    Item.objects.filter(project=project).update(source="cam-2")

    assert (
        kept(project)
        == fresh(project)
        == {
            ItemState.UNLABELED: 21,
            ItemState.QUEUED: 5,
            ItemState.IN_ANNOTATION: 2,
            ItemState.LABELED: 1,
            ItemState.SKIPPED: 1,
        }
    )
    assert kept(other) == {ItemState.UNLABELED: 4}


def test_a_rolled_back_write_leaves_the_counts_as_they_were():
    project = ProjectFactory()
    Item.objects.bulk_create(ItemFactory.build(project=project) for _ in range(5))
    with pytest.raises(RuntimeError), transaction.atomic():
        Item.objects.filter(project=project).update(state=ItemState.QUEUED)
        Item.objects.bulk_create(ItemFactory.build(project=project) for _ in range(3))
        raise RuntimeError("import batch failed")
    assert kept(project) == {ItemState.UNLABELED: 5}


def test_deleting_a_project_leaves_no_items_counted():
    project = ProjectFactory()
    Item.objects.bulk_create(ItemFactory.build(project=project) for _ in range(6))
    pk = project.pk
    project.delete()
    left = ItemStateCount.objects.filter(project_id=pk).values_list("n", flat=True)
    assert all(n == 0 for n in left)


def test_project_totals_and_recount_agree_with_the_items():
    project, empty = ProjectFactory(), ProjectFactory()
    Item.objects.bulk_create(ItemFactory.build(project=project) for _ in range(7))
    ItemStateCount.objects.filter(project=project).update(n=999)  # a doubted counter

    recount(ITEM_STATES)

    assert kept(project) == fresh(project) == {ItemState.UNLABELED: 7}
    totals = dict(
        project_item_totals(Project.objects.filter(pk__in=[project.pk, empty.pk])).values_list(
            "pk", "item_count"
        )
    )
    assert totals == {project.pk: 7, empty.pk: 0}

"""The triggers that keep the statistics' counts are in place after every `migrate`, also
after a migration that rebuilt a table (SQLite drops a table's triggers when it rebuilds it),
and the counts they keep then agree with a count from scratch."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from loupe.counters import counters_ensure
from loupe.datasets.counters import ITEM_STATES
from loupe.datasets.models import Item, ItemState
from loupe.labeling.counters import KEPT
from loupe.labeling.models import Annotation, AnnotationDayCount, GroundTruth
from loupe.projects.services import project_create
from tests.factories import ItemFactory
from tests.platform.insights.builders import annotate, truth

pytestmark = pytest.mark.django_db(transaction=True)

ALL_KEPT = (ITEM_STATES, *KEPT)


def triggers_on(table: str) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table]
            )
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [table],
            )
        return {name for (name,) in cursor.fetchall()}


def every_trigger_is_there() -> dict[str, set[str]]:
    """{count: its missing triggers} (empty sets when all are in place)."""
    return {
        kept.name: {f"{kept.name}_{s}" for s in ("ins", "upd", "del")} - triggers_on(kept.source)
        for kept in ALL_KEPT
    }


def recount_report() -> dict[str, str]:
    out = StringIO()
    call_command("loupe_recount", stdout=out)
    return {line.split()[0]: line for line in out.getvalue().splitlines()}


def migrate() -> None:
    call_command("migrate", verbosity=0, interactive=False)


@pytest.fixture
def project():
    project = project_create(
        name="Kept", slug="kept", created_by=None, classes=[{"name": "good"}, {"name": "bad"}]
    )
    # The test flush of an earlier test may have left the counts behind (see test_counters
    # of labeling): start from exact ones.
    recount_report()
    return project


def test_every_kept_count_has_its_triggers_after_migrations():
    assert every_trigger_is_there() == {kept.name: set() for kept in ALL_KEPT}
    assert counters_ensure(ALL_KEPT) == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL alters tables in place")
def test_a_table_rebuild_loses_the_triggers_and_migrate_brings_them_back(project):
    good, bad = project.classes.order_by("order")
    first = ItemFactory(project=project)
    annotate(first, "ann", good)
    # What SQLite does for many migrations (an altered column, a new constraint): a new
    # table, the rows copied, the old table dropped with its triggers.
    with connection.schema_editor() as editor:
        editor._remake_table(Annotation)
        editor._remake_table(Item)
    assert every_trigger_is_there()["loupe_annotation_days"]
    assert every_trigger_is_there()["loupe_item_states"]
    # Writes while the triggers are gone are not counted...
    second = ItemFactory(project=project)
    annotate(second, "bob", bad)
    annotate(second, "ann", bad)

    migrate()

    assert every_trigger_is_there() == {kept.name: set() for kept in ALL_KEPT}
    # ...but the reinstall recounted them, and the triggers count what comes next.
    Item.objects.filter(pk=second.pk).update(state=ItemState.LABELED)
    annotate(first, "eve", good)
    kept_answers = sum(
        AnnotationDayCount.objects.filter(project=project).values_list("n", flat=True)
    )
    assert kept_answers == 4
    assert all("unchanged" in line for line in recount_report().values())


def test_migrate_reinstalls_a_dropped_trigger_and_recounts(project):
    good, _ = project.classes.order_by("order")
    it = ItemFactory(project=project)
    truth(it, good)
    with connection.cursor() as cursor:
        for sql in KEPT[0].drop_sql(connection.vendor):  # ground truth per class
            cursor.execute(sql)
    # Missed by the dropped triggers: a label deleted, another added.
    GroundTruth.objects.filter(item=it).delete()
    truth(ItemFactory(project=project), good)
    truth(ItemFactory(project=project), good)

    migrate()

    assert every_trigger_is_there()["loupe_ground_truth"] == set()
    assert all("unchanged" in line for line in recount_report().values())


def test_an_outdated_trigger_is_replaced_by_the_codes(project):
    it = ItemFactory(project=project)
    with connection.cursor() as cursor:
        for sql in ITEM_STATES.drop_sql(connection.vendor):
            cursor.execute(sql)
        # A trigger of an older release that counts nothing.
        if connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER loupe_item_states_upd AFTER UPDATE ON datasets_item "
                "BEGIN SELECT 1; END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION loupe_item_states_upd() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RETURN NULL; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER loupe_item_states_upd AFTER UPDATE ON datasets_item "
                "FOR EACH STATEMENT EXECUTE FUNCTION loupe_item_states_upd()"
            )

    assert counters_ensure(ALL_KEPT) == ["loupe_item_states"]
    assert counters_ensure(ALL_KEPT) == []

    Item.objects.filter(pk=it.pk).update(state=ItemState.QUEUED)
    assert all("unchanged" in line for line in recount_report().values())


def test_migrating_again_changes_nothing(project):
    annotate(ItemFactory(project=project), "ann", project.classes.first())
    before = {kept.name: triggers_on(kept.source) for kept in ALL_KEPT}
    migrate()
    migrate()
    assert {kept.name: triggers_on(kept.source) for kept in ALL_KEPT} == before
    assert counters_ensure(ALL_KEPT) == []
    assert all("unchanged" in line for line in recount_report().values())

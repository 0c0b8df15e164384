"""The per-day answer and label counts and the agreement votes the database keeps stay equal
to a count from scratch through every kind of write: new answers, changed answers, skips,
deletions, bulk writes, raw SQL."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from loupe.counters import recount
from loupe.insights.selectors import agreement, throughput
from loupe.labeling.counters import KEPT
from loupe.labeling.models import (
    AgreementVote,
    Annotation,
    AnnotationDayCount,
    Decision,
    GroundTruth,
    GroundTruthCount,
    LabelDayCount,
)
from loupe.projects.services import project_create
from tests.platform.insights.builders import annotate, item, truth

pytestmark = pytest.mark.django_db(transaction=True)


def kept_days(project) -> dict:
    rows = AnnotationDayCount.objects.filter(project=project, n__gt=0)
    return {(r.annotator, r.day): r.n for r in rows}


def fresh_days(project) -> dict:
    rows = (
        Annotation.objects.filter(project=project, was_cancelled=False)
        .annotate(day=TruncDate(Coalesce("ls_updated_at", "created_at")))
        .values_list("annotator", "day")
        .annotate(n=Count("*"))
        .order_by()
    )
    return {(who, day): n for who, day, n in rows}


def kept_label_days(project) -> dict:
    rows = LabelDayCount.objects.filter(project=project, n__gt=0)
    return {(r.day, r.label_class_id): r.n for r in rows}


def fresh_label_days(project) -> dict:
    rows = (
        GroundTruth.objects.filter(project=project, needs_review=False)
        .exclude(decided_by=Decision.IMPORTED)
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "label_class_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    return {(day, cls): n for day, cls, n in rows}


def votes(project) -> set:
    return set(
        AgreementVote.objects.filter(project=project).values_list(
            "item_id", "annotator", "label_class__name", "pairs", "agree"
        )
    )


@pytest.fixture
def project():
    return project_create(
        name="Counters",
        slug="counters",
        created_by=None,
        classes=[{"name": "good"}, {"name": "scratch"}],
    )


def test_answers_per_annotator_and_day_follow_every_write(project):
    good, scratch = project.classes.order_by("order")
    a, b, c = (item(project) for _ in range(3))
    first = annotate(a, "ann@x", good, days_ago=3)
    annotate(b, "ann@x", scratch, days_ago=1)
    annotate(c, "bob@x", good, days_ago=1)
    skipped = annotate(c, "eve@x", None, days_ago=1, cancelled=True)
    # Label Studio reports a later update of the first answer, and a skip turned answer.
    Annotation.objects.filter(pk=first.pk).update(ls_updated_at=timezone.now())
    Annotation.objects.filter(pk=skipped.pk).update(was_cancelled=False)
    Annotation.objects.bulk_create(
        Annotation(item=a, project=project, annotator="bob@x", label_class=good) for _ in range(2)
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM labeling_annotation WHERE id = %s", [first.pk])

    assert kept_days(project) == fresh_days(project)
    today = timezone.now().date()
    assert kept_days(project)[("bob@x", today)] == 2
    assert sum(kept_days(project).values()) == 5


def test_new_labels_per_day_leave_out_imports_and_ties(project):
    good, scratch = project.classes.order_by("order")
    items = [item(project) for _ in range(5)]
    truth(items[0], good, days_ago=2)
    truth(items[1], good, days_ago=2)
    truth(items[2], scratch, decided_by=Decision.IMPORTED, days_ago=2)
    tie = truth(items[3], scratch, needs_review=True, days_ago=1)
    truth(items[4], scratch, days_ago=1)
    assert sum(kept_label_days(project).values()) == 3
    # A reviewer settles the tie; an imported label is deleted.
    GroundTruth.objects.filter(pk=tie.pk).update(needs_review=False, decided_by=Decision.REVIEW)
    GroundTruth.objects.filter(decided_by=Decision.IMPORTED).delete()

    assert kept_label_days(project) == fresh_label_days(project)
    assert sum(kept_label_days(project).values()) == 4


def test_ground_truth_per_class_follows_review_and_holdout_moves(project):
    good, scratch = project.classes.order_by("order")
    items = [item(project) for _ in range(4)]
    for it in items[:3]:
        truth(it, good)
    tie = truth(items[3], scratch, needs_review=True)
    GroundTruth.objects.filter(item=items[0]).update(in_holdout=True)
    GroundTruth.objects.filter(pk=tie.pk).update(needs_review=False, label_class=good)
    GroundTruth.objects.filter(item=items[1]).delete()

    kept = {
        (r.label_class_id, r.needs_review, r.in_holdout): r.n
        for r in GroundTruthCount.objects.filter(project=project, n__gt=0)
    }
    assert kept == {(good.pk, False, True): 1, (good.pk, False, False): 2}


def test_agreement_votes_are_rebuilt_when_answers_change(project):
    good, scratch = project.classes.order_by("order")
    a, b, lone = item(project), item(project), item(project)
    annotate(a, "ann", good)
    annotate(a, "bob", good)
    changing = annotate(a, "eve", scratch)
    annotate(b, "ann", scratch)
    annotate(b, "bob", good)
    annotate(lone, "ann", good)
    assert votes(project) == {
        (a.pk, "ann", "good", 2, 1),
        (a.pk, "bob", "good", 2, 1),
        (a.pk, "eve", "scratch", 2, 0),
        (b.pk, "ann", "scratch", 1, 0),
        (b.pk, "bob", "good", 1, 0),
    }
    # eve changes her mind (a later answer), bob skips item b: b has one voter left.
    Annotation.objects.filter(pk=changing.pk).update(
        label_class=good, ls_updated_at=datetime(2030, 1, 1, tzinfo=UTC)
    )
    Annotation.objects.filter(item=b, annotator="bob").update(was_cancelled=True)
    assert votes(project) == {
        (a.pk, "ann", "good", 2, 2),
        (a.pk, "bob", "good", 2, 2),
        (a.pk, "eve", "good", 2, 2),
    }
    stats = agreement(project=project)
    assert (stats["items_compared"], stats["pairs"], stats["pairwise_agreement"]) == (1, 6, 1.0)

    # Deleting the item takes its votes with it.
    a.delete()
    assert votes(project) == set()
    assert agreement(project=project)["items_compared"] == 0


def test_recount_rebuilds_what_triggers_keep(project):
    good, scratch = project.classes.order_by("order")
    a, b = item(project), item(project)
    annotate(a, "ann", good, days_ago=2)
    annotate(a, "bob", scratch, days_ago=1)
    annotate(b, "ann", good, days_ago=1)
    truth(b, good, days_ago=1)
    truths = lambda: set(GroundTruthCount.objects.values_list("label_class", "in_holdout", "n"))  # noqa: E731
    before = (kept_days(project), kept_label_days(project), votes(project), truths())
    GroundTruthCount.objects.update(n=5)
    AnnotationDayCount.objects.update(n=77)
    AgreementVote.objects.all().delete()
    LabelDayCount.objects.all().delete()

    recount(*KEPT)

    assert (kept_days(project), kept_label_days(project), votes(project), truths()) == before


def test_throughput_reads_the_window_from_the_kept_counts(project):
    good, _ = project.classes.order_by("order")
    old, recent = item(project), item(project)
    annotate(old, "ann", good, days_ago=40)
    annotate(recent, "ann", good, days_ago=2)
    annotate(recent, "bob", good, days_ago=0)
    data = throughput(project=project, days=30)
    rows = {a["annotator"]: a for a in data["annotators"]}
    assert (rows["ann"]["annotations"], rows["ann"]["in_window"]) == (2, 1)
    assert rows["ann"]["first_at"] < timezone.now() - timedelta(days=39)
    assert rows["ann"]["last_at"] > timezone.now() - timedelta(days=3)
    assert data["annotations_in_window"] == 2
    assert data["per_day"][-1]["annotations"] == 1


def test_recount_command_repairs_and_reports_a_drifted_count(project):
    from io import StringIO

    from django.core.management import call_command

    good, _ = project.classes.order_by("order")
    annotate(item(project), "ann", good)
    # SQLite's test flush deletes rows one by one (through the triggers): settle that first.
    call_command("loupe_recount", stdout=StringIO())
    out = StringIO()
    call_command("loupe_recount", stdout=out)
    assert "REBUILT" not in out.getvalue()

    AnnotationDayCount.objects.filter(project=project).update(n=40)
    out = StringIO()
    call_command("loupe_recount", stdout=out)

    lines = {line.split()[0]: line for line in out.getvalue().splitlines()}
    assert "REBUILT" in lines["loupe_annotation_days"]
    assert "REBUILT" not in lines["loupe_item_states"]
    assert sum(kept_days(project).values()) == 1

"""python manage.py loupe_recount — rebuilds the counts the database keeps for the
statistics (items per state, ground truth per class, answers and labels per day, agreement
votes) from the tables themselves, and says which ones had drifted."""

from django.core.management.base import BaseCommand
from django.db import connection

from loupe.counters import recount
from loupe.datasets.counters import ITEM_STATES
from loupe.labeling.counters import KEPT


class Command(BaseCommand):
    help = "Rebuild the statistics' kept counts from the items, annotations and ground truth."

    def handle(self, *args, **options):
        for counter in (ITEM_STATES, *KEPT):
            before = _contents(counter)
            recount(counter)
            after = _contents(counter)
            verdict = "unchanged" if before == after else "REBUILT: the kept counts had drifted"
            self.stdout.write(f"{counter.name:<24} {len(after):>9,} rows  {verdict}")


def _contents(counter) -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(counter.contents_sql())
        return set(cursor.fetchall())

"""What the kept counts cost the writers: the same writes with the counting triggers
installed and with them dropped, in one run, on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/counter_writes.py [--items 20000] [--repeat 3]
        [--database-url postgres://postgres@127.0.0.1:5432/loupe_counter_bench]

The writes are the ones Loupe makes: items created in batches of 500 (an import), 2,000 of
them marked queued and then in annotation (selection, push), two answers on each of 2,000
items (Label Studio), and their ground truth. Each database gets a fresh schema through
the migrations (PostgreSQL: the database named in the URL is dropped and created). The
figure is the ratio with / without triggers (median of --repeat runs each, alternating);
reads are what the counts buy (benchmarks/insights.py).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/loupe_counter_bench"
STEPS = ("create items", "queue + annotate", "answers", "ground truth")


def child(items: int, with_triggers: bool) -> dict[str, float]:
    """One round of writes in a fresh project; seconds per step."""
    import django

    django.setup()
    from django.db import connection, transaction

    from loupe.counters import install, uninstall
    from loupe.datasets.counters import ITEM_STATES
    from loupe.datasets.models import Item, ItemState
    from loupe.labeling.counters import KEPT
    from loupe.labeling.models import Annotation, Decision, GroundTruth
    from loupe.projects.services import project_create

    kept = (ITEM_STATES, *KEPT)
    with connection.schema_editor() as editor:
        for counter in kept:
            (install if with_triggers else uninstall)(counter, editor)
    project = project_create(
        name="Writes",
        slug=f"writes-{time.time_ns()}",
        created_by=None,
        classes=[{"name": "good"}, {"name": "scratch"}],
    )
    good, scratch = project.classes.order_by("order")
    tag = project.slug
    times: dict[str, float] = {}

    started = time.perf_counter()
    for start in range(0, items, 500):
        with transaction.atomic():
            Item.objects.bulk_create(
                Item(
                    project=project,
                    file=f"items/{tag}-{i}.png",
                    sha256=f"{tag}-{i}",
                    size_bytes=100,
                    width=32,
                    height=32,
                )
                for i in range(start, min(items, start + 500))
            )
    times["create items"] = time.perf_counter() - started

    picked = list(Item.objects.filter(project=project).values_list("id", flat=True)[:2000])
    started = time.perf_counter()
    for state in (ItemState.QUEUED, ItemState.IN_ANNOTATION):
        for start in range(0, len(picked), 100):  # pushed in batches of 100
            Item.objects.filter(pk__in=picked[start : start + 100]).update(state=state)
    times["queue + annotate"] = time.perf_counter() - started

    started = time.perf_counter()
    for start in range(0, len(picked), 50):  # webhooks and reconciliation pages
        with transaction.atomic():
            Annotation.objects.bulk_create(
                Annotation(
                    item_id=item_id,
                    project=project,
                    annotator=who,
                    label_class=good if (item_id + k) % 5 else scratch,
                )
                for item_id in picked[start : start + 50]
                for k, who in enumerate(("ann@x", "bob@x"))
            )
    times["answers"] = time.perf_counter() - started

    started = time.perf_counter()
    for start in range(0, len(picked), 50):
        with transaction.atomic():
            GroundTruth.objects.bulk_create(
                GroundTruth(
                    item_id=item_id,
                    project=project,
                    label_class=good,
                    decided_by=Decision.MAJORITY,
                    num_annotators=2,
                )
                for item_id in picked[start : start + 50]
            )
            Item.objects.filter(pk__in=picked[start : start + 50]).update(state=ItemState.LABELED)
    times["ground truth"] = time.perf_counter() - started
    with connection.schema_editor() as editor:  # leave the triggers in place
        for counter in kept:
            install(counter, editor)
    return times


def run_child(env: dict, items: int, with_triggers: bool) -> dict[str, float]:
    flag = "--with-triggers" if with_triggers else "--without-triggers"
    out = subprocess.run(
        [sys.executable, __file__, "--child", flag, "--items", str(items)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(label: str, env: dict, items: int, repeat: int) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env, check=True
    )
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(repeat):
        for with_triggers in (False, True):
            runs[with_triggers].append(run_child(env, items, with_triggers))
    print(f"\n{label}: {items:,} items, median of {repeat} (seconds)")
    print(f"{'step':<20}{'no triggers':>13}{'triggers':>10}{'ratio':>8}")
    for step in (*STEPS, "total"):

        def pick(rows, step=step):
            return statistics.median(sum(r.values()) if step == "total" else r[step] for r in rows)

        base, kept = pick(runs[False]), pick(runs[True])
        print(f"{step:<20}{base:>13.3f}{kept:>10.3f}{kept / base:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--with-triggers", dest="triggers", action="store_true")
    parser.add_argument("--without-triggers", dest="triggers", action="store_false")
    args = parser.parse_args()
    if args.child:
        sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
        print(json.dumps(child(args.items, args.triggers)))
        return
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.django.local",
        "LOUPE_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory(prefix="loupe-counter-bench-") as tmp:
        sqlite_env = {
            **base_env,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "LOUPE_VAR_DIR": tmp,
        }
        measure("SQLite", sqlite_env, args.items, args.repeat)
        import psycopg

        server, name = args.database_url.rsplit("/", 1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        pg_env = {**base_env, "DATABASE_URL": args.database_url, "LOUPE_VAR_DIR": tmp}
        measure("PostgreSQL", pg_env, args.items, args.repeat)


if __name__ == "__main__":
    main()

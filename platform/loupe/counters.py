"""Running counts kept by the database itself, for statistics that would otherwise count
millions of rows on every page view.

A `Counter` describes a grouped count over a source table (`SELECT keys, COUNT(*) FROM
source WHERE condition GROUP BY keys`) and the table that holds it. Triggers on the source
table keep that table exact: every INSERT, UPDATE and DELETE, from the ORM, a bulk write, a
queryset `update()` or raw SQL, adds and removes its rows in the same transaction. Readers
sum the counter rows instead of scanning the source.

- PostgreSQL: statement-level triggers with transition tables, so a bulk import of 20,000
  items is one grouped upsert, not 20,000. Deltas are applied in key order, so concurrent
  writers take the counter rows' locks in the same order.
- SQLite: row-level triggers (SQLite has no statement-level ones), one upsert per row.

Migrations install the triggers (`install`) and fill the table from the source
(`recount_sql`); `recount` rebuilds a counter at run time, should one ever be doubted.
Triggers can also vanish: SQLite rebuilds a table (new table, copy, drop, rename) for many
schema changes, and the drop takes the table's triggers with it. So after every `migrate`
(`keep_installed`, connected by the apps) each counter whose triggers are missing or differ
from the code's is reinstalled and recounted (`counters_ensure`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.signals import post_migrate


@dataclass(frozen=True)
class Key:
    """A counter column and the expression that computes it from a source row (`{r}` is the
    row's alias), per database vendor."""

    column: str
    postgresql: str
    sqlite: str = ""

    def expression(self, vendor: str, row: str) -> str:
        template = self.sqlite if vendor == "sqlite" and self.sqlite else self.postgresql
        return template.format(r=row)


@dataclass(frozen=True)
class Counter:
    name: str  # prefix of the trigger and function names
    source: str  # the table whose rows are counted
    table: str  # the counter table: the key columns, `n`, unique over the key columns
    keys: tuple[Key, ...]
    # Which source rows count, as an expression over `{r}`; the same text on both vendors.
    condition: str = "TRUE"

    def _upsert(self, rows: str) -> str:
        """INSERT ... ON CONFLICT adding the deltas of `rows` (columns: keys..., d)."""
        columns = ", ".join(k.column for k in self.keys)
        positions = ", ".join(str(i + 1) for i in range(len(self.keys)))
        return (
            f"INSERT INTO {self.table} ({columns}, n) "
            f"SELECT {columns}, SUM(d) FROM ({rows}) deltas "
            f"GROUP BY {positions} HAVING SUM(d) <> 0 ORDER BY {positions} "
            f"ON CONFLICT ({columns}) DO UPDATE SET n = {self.table}.n + EXCLUDED.n"
        )

    def _delta_rows(self, new: str | None, old: str | None) -> str:
        """+1 per counted row of the `new` transition table, -1 per row of `old`."""
        exprs = ", ".join(f"{k.expression('postgresql', 'r')} AS {k.column}" for k in self.keys)
        where = self.condition.format(r="r")
        return " UNION ALL ".join(
            f"SELECT {exprs}, {sign}1 AS d FROM {table} r WHERE {where}"
            for table, sign in ((new, ""), (old, "-"))
            if table
        )

    def install_sql(self, vendor: str) -> list[str]:
        if vendor == "postgresql":
            return self._install_postgresql()
        if vendor == "sqlite":
            return self._install_sqlite()
        raise NotImplementedError(f"no counter triggers for the {vendor} database")

    def _install_postgresql(self) -> list[str]:
        return statement_triggers_sql(
            self.name,
            self.source,
            lambda new, old: [self._upsert(self._delta_rows(new, old))],
        )

    def _install_sqlite(self) -> list[str]:
        columns = ", ".join(k.column for k in self.keys)

        def add(row: str, sign: str) -> str:
            exprs = ", ".join(k.expression("sqlite", row) for k in self.keys)
            # SQLite needs the WHERE to tell the upsert clause from a join's ON.
            return (
                f"INSERT INTO {self.table} ({columns}, n) SELECT {exprs}, {sign}1 "
                f"WHERE {self.condition.format(r=row)} "
                f"ON CONFLICT ({columns}) DO UPDATE SET n = n + EXCLUDED.n"
            )

        def body(new: str | None, old: str | None) -> list[str]:
            return [add(row, sign) for row, sign in ((old, "-"), (new, "")) if row]

        return row_triggers_sql(self.name, self.source, body)

    def drop_sql(self, vendor: str) -> list[str]:
        return drop_triggers_sql(self.name, self.source, vendor)

    def contents_sql(self) -> str:
        """The counts as a recount would write them (rows at zero left out)."""
        columns = ", ".join(k.column for k in self.keys)
        return f"SELECT {columns}, n FROM {self.table} WHERE n <> 0"

    def recount_sql(self, vendor: str) -> list[str]:
        """Empties the counter table and counts the source afresh."""
        columns = ", ".join(k.column for k in self.keys)
        exprs = ", ".join(k.expression(vendor, "r") for k in self.keys)
        positions = ", ".join(str(i + 1) for i in range(len(self.keys)))
        return [
            f"DELETE FROM {self.table}",
            f"INSERT INTO {self.table} ({columns}, n) SELECT {exprs}, COUNT(*) "
            f"FROM {self.source} r WHERE {self.condition.format(r='r')} GROUP BY {positions}",
        ]


# PostgreSQL trigger events and the transition tables each one sees (new rows, old rows).
_EVENTS = {
    "ins": ("INSERT", "REFERENCING NEW TABLE AS new_rows", "new_rows", None),
    "upd": (
        "UPDATE",
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "new_rows",
        "old_rows",
    ),
    "del": ("DELETE", "REFERENCING OLD TABLE AS old_rows", None, "old_rows"),
}


def statement_triggers_sql(
    name: str, source: str, body: Callable[[str | None, str | None], list[str]]
) -> list[str]:
    """PostgreSQL: a function and an AFTER ... FOR EACH STATEMENT trigger per event on
    `source`, running the statements `body(new rows table, old rows table)` gives."""
    statements = []
    for suffix, (event, referencing, new, old) in _EVENTS.items():
        function = f"{name}_{suffix}"
        lines = "".join(f"  {sql};\n" for sql in body(new, old))
        statements += [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{lines}  RETURN NULL;\nEND\n$$",
            f"DROP TRIGGER IF EXISTS {function} ON {source}",
            f"CREATE TRIGGER {function} AFTER {event} ON {source} {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    return statements


def row_triggers_sql(
    name: str, source: str, body: Callable[[str | None, str | None], list[str]]
) -> list[str]:
    """SQLite: an AFTER ... FOR EACH ROW trigger per event on `source`, running the
    statements `body(new row alias, old row alias)` gives."""
    statements = []
    for suffix, (event, _, new, old) in _EVENTS.items():
        lines = " ".join(f"{sql};" for sql in body(new and "NEW", old and "OLD"))
        statements += [
            f"DROP TRIGGER IF EXISTS {name}_{suffix}",
            f"CREATE TRIGGER {name}_{suffix} AFTER {event} ON {source} BEGIN {lines} END",
        ]
    return statements


def drop_triggers_sql(name: str, source: str, vendor: str) -> list[str]:
    """Drops the three triggers (and on PostgreSQL their functions) named after `name`."""
    statements = []
    for suffix in ("ins", "upd", "del"):
        if vendor == "postgresql":
            statements.append(f"DROP TRIGGER IF EXISTS {name}_{suffix} ON {source}")
            statements.append(f"DROP FUNCTION IF EXISTS {name}_{suffix}()")
        else:
            statements.append(f"DROP TRIGGER IF EXISTS {name}_{suffix}")
    return statements


def install(counter: Counter, schema_editor) -> None:
    """For a RunPython migration: the triggers, then the counts of what is already there."""
    vendor = schema_editor.connection.vendor
    for sql in counter.install_sql(vendor) + counter.recount_sql(vendor):
        schema_editor.execute(sql)


def uninstall(counter: Counter, schema_editor) -> None:
    for sql in counter.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql)


def recount(*counters, using: str = DEFAULT_DB_ALIAS) -> None:
    """Rebuilds counter tables from their sources, in one transaction. The sources are
    locked meanwhile on PostgreSQL, so no write lands between the count and the switch."""
    db = connections[using]
    with transaction.atomic(using=using), db.cursor() as cursor:
        if db.vendor == "postgresql":
            sources = ", ".join(sorted({counter.source for counter in counters}))
            cursor.execute(f"LOCK TABLE {sources} IN SHARE MODE")
        for counter in counters:
            for sql in counter.recount_sql(db.vendor):
                cursor.execute(sql)


class Kept(Protocol):
    """What `counters_ensure` needs of a kept count (a Counter or another trigger-kept table)."""

    name: str
    source: str
    table: str

    def install_sql(self, vendor: str) -> list[str]: ...

    def recount_sql(self, vendor: str) -> list[str]: ...


_SQLITE_TRIGGER = re.compile(r"CREATE TRIGGER (\w+) ")
_POSTGRESQL_FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(\).*?\$\$(.*)\$\$", re.S)


def expected_triggers(kept: Kept, vendor: str) -> dict[str, str]:
    """{trigger name: definition} as `install_sql` creates them: the CREATE TRIGGER text on
    SQLite, the trigger function's body on PostgreSQL (trigger and function share a name)."""
    pattern = _SQLITE_TRIGGER if vendor == "sqlite" else _POSTGRESQL_FUNCTION
    found = {}
    for sql in kept.install_sql(vendor):
        match = pattern.match(sql)
        if match:
            found[match.group(1)] = sql if vendor == "sqlite" else match.group(2)
    return found


def installed_triggers(kept: Kept, *, using: str = DEFAULT_DB_ALIAS) -> dict[str, str]:
    """{trigger name: definition} of the triggers named after `kept` that are on its source
    table now, in the form `expected_triggers` gives."""
    db = connections[using]
    with db.cursor() as cursor:
        if db.vendor == "sqlite":
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [kept.source],
            )
        else:
            cursor.execute(
                "SELECT t.tgname, p.prosrc FROM pg_trigger t "
                "JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace "
                "AND NOT t.tgisinternal",
                [kept.source],
            )
        rows = cursor.fetchall()
    prefix = f"{kept.name}_"
    return {name: sql for name, sql in rows if name.startswith(prefix)}


def counters_ensure(kept: Iterable[Kept], *, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Reinstalls the triggers of every kept count whose triggers are missing or differ from
    the code's, and recounts it (writes made while its triggers were gone were not counted).
    Idempotent: a count whose triggers are in place is left alone. Counts whose tables do
    not exist (a database migrated back before them) are skipped. Returns the names of the
    counts it repaired."""
    db = connections[using]
    tables = set(db.introspection.table_names())
    repaired = []
    for counter in kept:
        if counter.source not in tables or counter.table not in tables:
            continue
        if installed_triggers(counter, using=using) == expected_triggers(counter, db.vendor):
            continue
        with transaction.atomic(using=using), db.cursor() as cursor:
            if db.vendor == "postgresql":
                # Writers wait until the triggers and the fresh count are both in place.
                cursor.execute(f"LOCK TABLE {counter.source} IN SHARE ROW EXCLUSIVE MODE")
            for sql in counter.install_sql(db.vendor) + counter.recount_sql(db.vendor):
                cursor.execute(sql)
        repaired.append(counter.name)
    return repaired


def keep_installed(app_config, kept: Iterable[Kept]) -> None:
    """From an AppConfig's ready(): after each `migrate`, the app's kept counts get back any
    trigger a migration dropped (see `counters_ensure`)."""
    kept = tuple(kept)

    def reinstall(sender, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
        counters_ensure(kept, using=using)

    post_migrate.connect(
        reinstall, sender=app_config, weak=False, dispatch_uid=f"{app_config.label}.counters"
    )


class KeptCountAdmin:
    """Admin options for a table the triggers keep: readable, never edited by hand (a wrong
    count is repaired by `manage.py loupe_recount`)."""

    list_filter = ["project"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

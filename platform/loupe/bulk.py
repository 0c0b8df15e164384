"""Inserting many rows from plain tuples. bulk_create builds a model instance per row and
prepares each field of each row through the ORM, which costs several times the INSERT itself
for the tables Loupe fills by the thousand (items at import, predictions at scoring)."""

from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import Model
from django.db.models.constants import OnConflict


def insert_rows(
    model: type[Model],
    field_names: Sequence[str],
    rows: Iterable[Sequence],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """INSERTs `rows` (values already in database form, see `db_value`) into the model's
    table, as bulk_create would, with ON CONFLICT DO NOTHING when `ignore_conflicts`."""
    fields = [model._meta.get_field(name) for name in field_names]
    ops = connection.ops
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    table = ops.quote_name(model._meta.db_table)
    columns = ", ".join(ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    suffix = ops.on_conflict_suffix_sql(fields, on_conflict, None, None) or ""
    sql = (
        f"{ops.insert_statement(on_conflict=on_conflict)} {table} ({columns}) "
        f"VALUES ({placeholders}) {suffix}"
    ).rstrip()
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(rows))


def db_value(model: type[Model], field_name: str, value):
    """A value as the ORM would send it for this field (dates, JSON, ...)."""
    return model._meta.get_field(field_name).get_db_prep_save(value, connection)

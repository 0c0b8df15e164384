"""Cells a spreadsheet shows as text. Spreadsheets run a cell that starts with `=`, `+`, `-`
or `@` (and, in some, a tab or carriage return) as a formula, so any text Loupe writes into a
CSV that users chose (class names, file names, sources) is prefixed with a single quote."""

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """`value` as a CSV cell: text that would start a formula gets a leading `'`; numbers
    and other values are left as they are (None becomes an empty cell)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value

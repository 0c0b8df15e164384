"""Cursor pages ordered by a column that has ties (a confidence, an uncertainty).

The cursor holds the (value, id) of the row a page stops at, and the next page starts after
that pair, so every row appears exactly once however many rows share a value. DRF's
CursorPagination keeps one value and an offset instead, and its offset stops at 1,000: a
pool with more than a thousand predictions of confidence 1.0 would repeat a page forever.
The answer has the same shape as the other list endpoints: next, previous, results."""

import base64
import binascii
import json

from django.db.models import Q, QuerySet
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from loupe.api.pagination import page_schema
from loupe.errors import ApplicationError

CURSOR_PARAM = "cursor"


class KeysetPagination:
    """Pages of `page_size` rows ordered by `field` (ascending or descending), ties broken
    by ascending primary key."""

    def __init__(self, *, field: str = "pk", descending: bool = False, page_size: int = 50) -> None:
        self.field = field
        self.descending = descending
        self.page_size = page_size

    def paginate(self, queryset: QuerySet, request) -> list:
        cursor = _decode(request.query_params.get(CURSOR_PARAM), field=self.field)
        backwards = cursor is not None and cursor["d"] == "prev"
        rows = queryset.order_by(*self._ordering(backwards=backwards))
        if cursor is not None:
            rows = rows.filter(self._beyond(cursor["v"], cursor["i"], backwards=backwards))
        fetched = list(rows[: self.page_size + 1])
        page = fetched[: self.page_size]
        more = len(fetched) > self.page_size
        if backwards:
            page.reverse()
        self._url = request.build_absolute_uri()
        self._page = page
        # A page reached by going back has a next page (the one it came from), and a page
        # reached by going forward has a previous one.
        self._has_next = bool(page) and (True if backwards else more)
        self._has_previous = bool(page) and (more if backwards else cursor is not None)
        return page

    def response(self, data) -> Response:
        return Response(
            {
                "next": self._link(self._page[-1], "next") if self._has_next else None,
                "previous": self._link(self._page[0], "prev") if self._has_previous else None,
                "results": data,
            }
        )

    # How the OpenAPI schema describes these pages (see loupe.api.pagination.paginated).
    def get_paginated_response_schema(self, schema: dict) -> dict:
        return page_schema(schema)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": CURSOR_PARAM,
                "in": "query",
                "required": False,
                "description": "the page to answer: the `next` or `previous` link's cursor",
                "schema": {"type": "string"},
            }
        ]

    def _ordering(self, *, backwards: bool) -> tuple[str, str]:
        descending = self.descending != backwards
        return (f"-{self.field}" if descending else self.field, "-pk" if backwards else "pk")

    def _beyond(self, value, pk: int, *, backwards: bool) -> Q:
        """Rows after (value, pk) in the page order, or before it when going back."""
        larger = self.descending == backwards
        value_side = f"{self.field}__gt" if larger else f"{self.field}__lt"
        pk_side = "pk__lt" if backwards else "pk__gt"
        return Q(**{value_side: value}) | Q(**{self.field: value, pk_side: pk})

    def _link(self, row, direction: str) -> str:
        token = json.dumps(
            {
                "f": self.field,
                "v": getattr(row, self.field),
                "i": row.pk,
                "d": direction,
            }
        )
        encoded = base64.urlsafe_b64encode(token.encode()).decode()
        return replace_query_param(self._url, CURSOR_PARAM, encoded)


def _decode(encoded: str | None, *, field: str) -> dict | None:
    if encoded is None:
        return None
    try:
        cursor = json.loads(base64.urlsafe_b64decode(encoded.encode()))
        valid = (
            isinstance(cursor, dict)
            and cursor.get("f") == field
            and cursor.get("d") in ("next", "prev")
            and isinstance(cursor.get("i"), int)
            and isinstance(cursor.get("v"), int | float)
            and not isinstance(cursor.get("v"), bool)
        )
    except (ValueError, binascii.Error, UnicodeError):
        valid = False
    if not valid:
        raise ApplicationError(
            "The cursor is not valid for this ordering; start again from the first page."
        )
    return cursor

"""Cursor pages for the API's lists, and how the OpenAPI schema describes them.

Every list answers one page: `{"next": url | null, "previous": url | null, "results": [...]}`.
A view's `extend_schema(responses=paginated(Serializer))` documents that shape and the paging
query parameters (`cursor`, and `page_size` where the list takes one); the view answers it
with `paginated_response` (or a KeysetPagination, which keyset.py describes)."""

from rest_framework import pagination
from rest_framework.exceptions import NotFound

from loupe.errors import ApplicationError

# Where `paginated` leaves the paginator class on the list serializer it returns, for
# loupe.api.schema to find.
PAGINATOR_ATTRIBUTE = "_loupe_paginator"


def page_schema(results: dict) -> dict:
    """The OpenAPI schema of one page whose `results` items follow `results`."""
    link = {"type": "string", "format": "uri", "nullable": True}
    return {
        "type": "object",
        "required": ["next", "previous", "results"],
        "properties": {
            "next": {**link, "description": "the next page; null on the last"},
            "previous": {**link, "description": "the previous page; null on the first"},
            "results": results,
        },
    }


class CursorPagination(pagination.CursorPagination):
    """Stable pages over large, growing tables (items arrive while people browse)."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        # A forged or stale cursor is the client's mistake (400), as for keyset pages.
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise ApplicationError(
                "The cursor is not valid for this list; start again from the first page.",
                extra={"cursor": request.query_params.get(self.cursor_query_param, "")},
            ) from exc

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return page_schema(schema)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(
                    minimum=1, maximum=self.max_page_size, default=self.page_size
                )
                parameter["description"] = (
                    f"rows per page, 1 to {self.max_page_size} (default {self.page_size})"
                )
        return parameters


def paginated(serializer, *, paginator=CursorPagination):
    """For `extend_schema(responses=...)`: a list of `serializer` rows answered in pages of
    `paginator` (a class). The schema shows the page (next, previous, results) and the
    paginator's query parameters."""
    serializer_class = serializer if isinstance(serializer, type) else type(serializer)
    listed = serializer_class(many=True)
    setattr(listed, PAGINATOR_ATTRIBUTE, paginator)
    return listed


def paginated_response(*, view, request, queryset, serializer, context=None):
    """One cursor page of `queryset`, serialized, with next/previous links."""
    paginator = CursorPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)

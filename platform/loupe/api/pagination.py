from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages over large, growing tables (items arrive while people browse)."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def paginated_response(*, view, request, queryset, serializer, context=None):
    """One cursor page of `queryset`, serialized, with next/previous links."""
    paginator = CursorPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)

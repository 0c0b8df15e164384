from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages over large, growing tables (items arrive while people browse)."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

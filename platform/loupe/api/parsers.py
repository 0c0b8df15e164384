"""Request body parsers: what the client sent is never a reason for a 500."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested deeper than Python's recursion limit is a parse
    error (400), as any other body that is not JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            message = "JSON parse error - the body is nested too deeply."
            raise exceptions.ParseError(message) from exc

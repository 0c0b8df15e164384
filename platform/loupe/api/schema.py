"""OpenAPI generation.

- Serializers nested in views (`ItemListApi.FilterSerializer`) get the view's name as a
  prefix, so the many `InputSerializer`s do not collide in the schema.
- Lists declared with `paginated(...)` (loupe.api.pagination) are documented as the pages
  they answer, `{next, previous, results}`, with their paging query parameters.
- Every operation documents the error answers that apply to it, all in the one error shape
  (`Error`, see loupe.api.errors): 400 when it takes input (a body, query parameters), 401
  when it needs a signed-in user, 403 when a signed-in user's role may forbid it (writes),
  404 when a path names an object. A view adds others (409, 503, a 403 on a read) with
  `responses={..., 409: ERROR}`."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from loupe.api.pagination import PAGINATOR_ATTRIBUTE

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class ErrorSerializer(serializers.Serializer):
    """Every failure of the API answers this shape."""

    class DetailSerializer(serializers.Serializer):
        code = serializers.CharField(help_text="a stable, machine-readable name of the failure")
        message = serializers.CharField(help_text="what went wrong, for people")
        details = serializers.DictField(
            help_text="structured details, e.g. the invalid fields and their messages"
        )

    error = DetailSerializer()


ERROR = ErrorSerializer

ERROR_DESCRIPTIONS = {
    "400": "The request is not valid; `details` names the fields and what is wrong.",
    "401": "Not signed in: no API token or session, or a wrong one.",
    "403": "Signed in, but your role in the project does not allow this.",
    "404": "No such object, or one you may not see.",
    "409": "The request conflicts with the current state.",
    "413": "The upload is larger than the server accepts.",
    "429": "Too many attempts; try again later.",
    "502": "A service Loupe depends on refused the request.",
    "503": "A service Loupe depends on cannot be reached; try again in a moment.",
}


def _main_response(responses):
    """The success serializer of an `extend_schema(responses=...)` override."""
    if isinstance(responses, dict):
        successes = [s for code, s in responses.items() if str(code)[:1] == "2"]
        return successes[0] if successes else None
    return responses


class AutoSchema(openapi.AutoSchema):
    def get_serializer_name(self, serializer, direction):
        name = super().get_serializer_name(serializer, direction)
        owner, _, _ = type(serializer).__qualname__.rpartition(".")
        if owner and owner != ErrorSerializer.__qualname__:
            return owner.removesuffix("Api") + name
        return name

    def _get_paginator(self):
        main = _main_response(self.get_response_serializers())
        paginator = getattr(main, PAGINATOR_ATTRIBUTE, None)
        if paginator is not None:
            return paginator()
        return super()._get_paginator()

    def _error_codes(self) -> list[str]:
        """The error answers every operation of this kind can give."""
        codes = []
        takes_query = any(p["in"] == "query" for p in self._get_parameters())
        if self.method in UNSAFE_METHODS or takes_query:
            codes.append("400")
        authenticated = bool(self.view.get_authenticators()) and not all(
            isinstance(permission, AllowAny) for permission in self.view.get_permissions()
        )
        if authenticated:
            codes.append("401")
            if self.method in UNSAFE_METHODS:
                codes.append("403")
        if "{" in self.path:
            codes.append("404")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ERROR, description=ERROR_DESCRIPTIONS[code]), code
                )
        for code, response in responses.items():
            if not response.get("description") and code in ERROR_DESCRIPTIONS:
                response["description"] = ERROR_DESCRIPTIONS[code]
        return dict(sorted(responses.items()))

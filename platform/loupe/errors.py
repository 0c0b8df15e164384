"""The one error type of the application. Services raise it; the API layer turns it into the
single JSON error shape (see loupe.api.errors)."""

from typing import Any


class ApplicationError(Exception):
    """A failure the user can understand and act on.

    `status` is the HTTP status the API answers with; `extra` carries structured details.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        status: int = 400,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.extra = extra or {}


class NotFoundError(ApplicationError):
    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, code="not_found", status=404, **kwargs)


class PermissionDeniedError(ApplicationError):
    def __init__(self, message: str = "You may not do this in this project.", **kwargs: Any):
        super().__init__(message, code="permission_denied", status=403, **kwargs)

"""The size limit on uploaded files (LOUPE_MAX_UPLOAD_BYTES).

`UploadLimitHandler` comes first among Django's upload handlers: it counts each file's bytes
as they arrive and drops a file that passes the limit before the next handler writes another
byte of it to disk, so an over-large upload costs neither memory nor disk. The view then
answers 413 through `upload_size_check`, which says what the limit is."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

from loupe.datasets.sources import size_in_words
from loupe.errors import ApplicationError

_OVER_LIMIT = "loupe_upload_over_limit"


def upload_too_large_error() -> ApplicationError:
    limit = settings.LOUPE_MAX_UPLOAD_BYTES
    return ApplicationError(
        f"The upload is larger than the {size_in_words(limit)} limit (LOUPE_MAX_UPLOAD_BYTES).",
        code="upload_too_large",
        status=413,
        extra={"max_upload_bytes": limit},
    )


class UploadLimitHandler(FileUploadHandler):
    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > settings.LOUPE_MAX_UPLOAD_BYTES:
            setattr(self.request, _OVER_LIMIT, True)
            # The file is dropped (what later handlers stored of it is removed); the rest of
            # the form is still read.
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def upload_size_check(*, request) -> None:
    """Raises the 413 error when the request's body held a file over the limit. Call it
    after the body has been read (`request.FILES`, or `request.data` in a REST view)."""
    django_request = getattr(request, "_request", request)
    if getattr(django_request, _OVER_LIMIT, False):
        raise upload_too_large_error()

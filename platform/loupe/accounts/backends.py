"""Django's model backend, refusing sign-ins while a lockout holds (see lockout.py)."""

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from loupe.accounts import lockout


class LockoutModelBackend(ModelBackend):
    """Every sign-in with a password (web page, admin, API token) comes through here: while
    the username or address is locked out, even the right password is refused; a success
    clears the username's failures."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        attempt = lockout.LoginAttempt.of(request=request, username=username)
        if attempt is not None and lockout.login_retry_after(attempt=attempt):
            # PermissionDenied stops authenticate() at once, with no other backend asked.
            raise PermissionDenied("locked out")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and attempt is not None:
            lockout.login_failures_clear(attempt=attempt)
        return user

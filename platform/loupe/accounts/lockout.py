"""Failed sign-ins and lockouts.

Failures are counted per (username, client address) and per address in the cache. After
LOUPE_LOGIN_MAX_FAILURES failures for one username from one address (or
LOUPE_LOGIN_MAX_FAILURES_PER_ADDRESS over any usernames from one address) within
LOUPE_LOGIN_LOCKOUT_SECONDS, sign-ins from there are refused for that long, even with the
right password. Another address is not locked out, so nobody can lock a colleague out of
their account from afar.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from loupe.errors import ApplicationError

logger = logging.getLogger(__name__)


class LoginLockedOut(ApplicationError):
    """Too many failed sign-ins: answered 429 with a Retry-After header."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            f"Too many failed sign-ins. Try again in {minutes} minute{'s' * (minutes > 1)}.",
            code="too_many_attempts",
            status=429,
            extra={"retry_after": retry_after},
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoginAttempt:
    """Who tries to sign in, and from where."""

    username: str
    address: str

    @classmethod
    def of(cls, *, request, username) -> LoginAttempt | None:
        """The attempt of `request` (None without a request or username: a shell or a
        script signing someone in, not a person at a login form)."""
        if request is None or not isinstance(username, str) or not username.strip():
            return None
        return cls(username=username.strip().lower(), address=client_address(request))

    def limits(self) -> list[tuple[str, str, int]]:
        """(counter key, lock key, failures allowed) for the pair and for the address."""
        pair = _digest(self.username, self.address)
        address = _digest(self.address)
        return [
            (
                f"loupe:login:failures:{pair}",
                f"loupe:login:lock:{pair}",
                settings.LOUPE_LOGIN_MAX_FAILURES,
            ),
            (
                f"loupe:login:address-failures:{address}",
                f"loupe:login:address-lock:{address}",
                settings.LOUPE_LOGIN_MAX_FAILURES_PER_ADDRESS,
            ),
        ]


def client_address(request) -> str:
    """The client's IP address. Behind the reverse proxy (DJANGO_BEHIND_PROXY) it is the
    last X-Forwarded-For entry, the one the proxy itself added; a client can put anything
    in the entries before it."""
    meta = request.META
    if settings.LOUPE_BEHIND_PROXY:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded[-1]:
            return forwarded[-1]
    return meta.get("REMOTE_ADDR") or "unknown"


def login_retry_after(*, attempt: LoginAttempt) -> int:
    """Seconds until `attempt` may sign in again; 0 when it may now."""
    try:
        locks = cache.get_many([lock for _, lock, _ in attempt.limits()])
    except Exception:
        # Signing in stays possible while the cache is away; the failure is logged.
        logger.warning("login lockout not checked: the cache is unavailable", exc_info=True)
        return 0
    until = max(locks.values(), default=0.0)
    return max(0, math.ceil(until - time.time()))


def login_check(*, request, username) -> None:
    """Raises LoginLockedOut while the username or address of `request` is locked out."""
    attempt = LoginAttempt.of(request=request, username=username)
    if attempt is None:
        return
    retry_after = login_retry_after(attempt=attempt)
    if retry_after:
        raise LoginLockedOut(retry_after)


def login_failure_record(*, attempt: LoginAttempt) -> None:
    """Counts one failed sign-in; the failure that reaches a limit starts the lockout."""
    window = settings.LOUPE_LOGIN_LOCKOUT_SECONDS
    try:
        for counter, lock, allowed in attempt.limits():
            cache.add(counter, 0, timeout=window)
            try:
                failures = cache.incr(counter)
            except ValueError:  # expired between add and incr
                cache.set(counter, 1, timeout=window)
                failures = 1
            # Exactly at the limit: later failures (the admin page still asks the backend)
            # do not push the end of the lockout further out.
            if failures == allowed:
                cache.set(lock, time.time() + window, timeout=window)
                logger.warning(
                    "sign-in locked out for %ss after %s failures (user %r, address %s)",
                    window,
                    failures,
                    attempt.username,
                    attempt.address,
                )
    except Exception:
        logger.warning("failed sign-in not counted: the cache is unavailable", exc_info=True)


def login_failures_clear(*, attempt: LoginAttempt) -> None:
    """A successful sign-in forgets that username's failures from that address."""
    counter, _, _ = attempt.limits()[0]
    try:
        cache.delete(counter)
    except Exception:
        logger.warning("sign-in failures not cleared: the cache is unavailable", exc_info=True)


def _digest(*parts: str) -> str:
    # Hashed: cache keys stay short and safe whatever a username contains.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

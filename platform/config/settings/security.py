"""Sign-in protection and how Loupe learns a client's address."""

from config.env import env

# True only where a reverse proxy (TLS) is the one way in: its X-Forwarded-Proto and
# X-Forwarded-For headers are then trusted. Where gunicorn is reachable directly, anyone
# could send them.
LOUPE_BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)
# After this many failed sign-ins for one username from one address, that pair is locked
# out for LOUPE_LOGIN_LOCKOUT_SECONDS; one address is locked out after
# LOUPE_LOGIN_MAX_FAILURES_PER_ADDRESS failures over any usernames.
LOUPE_LOGIN_MAX_FAILURES = env.int("LOUPE_LOGIN_MAX_FAILURES", default=5)
LOUPE_LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("LOUPE_LOGIN_MAX_FAILURES_PER_ADDRESS", default=50)
LOUPE_LOGIN_LOCKOUT_SECONDS = env.int("LOUPE_LOGIN_LOCKOUT_SECONDS", default=15 * 60)

"""Production settings: everything that differs comes from the environment.

Loupe refuses to start without secrets of its own: the embedded defaults are public (they
are in this repository), and with them anyone could sign sessions or forge Label Studio
events that become ground truth."""

from django.core.exceptions import ImproperlyConfigured

from config.django.base import *  # noqa: F403
from config.django.base import INSECURE_SECRET_KEY, SILENCED_SYSTEM_CHECKS
from config.env import env
from config.settings.label_studio import (
    DEMO_LABEL_STUDIO_API_TOKEN,
    DEMO_LABEL_STUDIO_WEBHOOK_SECRET,
)
from config.settings.security import LOUPE_BEHIND_PROXY

# Values anyone can read: the embedded defaults and what earlier compose files filled in.
PUBLIC_SECRET_VALUES = {
    "DJANGO_SECRET_KEY": {INSECURE_SECRET_KEY},
    "LABEL_STUDIO_WEBHOOK_SECRET": {DEMO_LABEL_STUDIO_WEBHOOK_SECRET, "change-me"},
    "LABEL_STUDIO_API_TOKEN": {DEMO_LABEL_STUDIO_API_TOKEN},
}


def required_secret(name: str) -> str:
    """The value of the environment variable `name`; ImproperlyConfigured when it is unset,
    blank or one of the public values above."""
    value = env.str(name, default="").strip()
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Production needs a secret of its own for it "
            "(see README, Production)."
        )
    if value in PUBLIC_SECRET_VALUES.get(name, ()):
        raise ImproperlyConfigured(
            f"{name} is a public default from Loupe's repository. Set a secret of its own "
            "(see README, Production)."
        )
    return value


DEBUG = False
SECRET_KEY = required_secret("DJANGO_SECRET_KEY")
LABEL_STUDIO_WEBHOOK_SECRET = required_secret("LABEL_STUDIO_WEBHOOK_SECRET")
LABEL_STUDIO_API_TOKEN = required_secret("LABEL_STUDIO_API_TOKEN")

# HTTPS only: plain HTTP is redirected, and browsers are told (HSTS) to use nothing else.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Label Studio calls the webhook over the compose network (http://web:8000), not through
# the TLS proxy; the call carries the shared secret and is not redirected.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/labeling/webhook/$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    # Joining the browsers' preload list is the domain owner's choice, hard to undo; the
    # deploy check's reminder about it is not a fault of this installation.
    SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W021"]
# Only a proxy that is the one way in may say the request came over HTTPS.
if LOUPE_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=True)
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

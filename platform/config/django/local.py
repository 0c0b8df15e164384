"""Settings for a developer machine and `make demo`.

DEBUG stays off unless DJANGO_DEBUG=1: the demo shows Loupe's own 404 and 500 pages, not
Django's debug page with the URL list and settings. Static files are served by WhiteNoise
either way, straight from the source folders, so `runserver` needs no collectstatic."""

from urllib.parse import urlsplit

from config.django.base import *  # noqa: F403
from config.django.base import ALLOWED_HOSTS
from config.env import env
from config.settings.label_studio import LOUPE_PUBLIC_URL

DEBUG = env.bool("DJANGO_DEBUG", default=False)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# The address the demo prints (and Label Studio's webhooks call) is always a valid host.
_public_host = urlsplit(LOUPE_PUBLIC_URL).hostname
if _public_host and _public_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, _public_host]

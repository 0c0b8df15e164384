"""Settings for a developer machine and `make demo`.

DEBUG stays off unless DJANGO_DEBUG=1: the demo shows Loupe's own 404 and 500 pages, not
Django's debug page with the URL list and settings. Static files are served by WhiteNoise
either way, straight from the source folders, so `runserver` needs no collectstatic."""

from config.django.base import *  # noqa: F403
from config.env import env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

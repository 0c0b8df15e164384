"""Settings for a developer machine and `make demo`."""

from config.django.base import *  # noqa: F403
from config.env import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)

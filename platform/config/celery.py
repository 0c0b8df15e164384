"""The Celery app object. Task modules live in workers/; the web side enqueues by task name
through loupe.jobs and never imports them."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.django.local")

app = Celery(
    "loupe", include=["workers.startup", "workers.tasks", "workers.learning", "workers.labeling"]
)
app.config_from_object("django.conf:settings", namespace="CELERY")

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "loupe.web"
    label = "web"

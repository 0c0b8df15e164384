from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "loupe.api"
    label = "api"

from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "loupe.insights"
    label = "insights"

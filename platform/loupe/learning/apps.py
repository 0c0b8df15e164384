from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "loupe.learning"
    label = "learning"

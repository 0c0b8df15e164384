from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "loupe.datasets"
    label = "datasets"

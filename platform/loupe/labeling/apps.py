from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "loupe.labeling"
    label = "labeling"

from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "loupe.labeling"
    label = "labeling"

    def ready(self):
        from loupe.counters import keep_installed
        from loupe.labeling.counters import KEPT

        keep_installed(self, KEPT)

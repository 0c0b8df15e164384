from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "loupe.datasets"
    label = "datasets"

    def ready(self):
        from loupe.counters import keep_installed
        from loupe.datasets.counters import ITEM_STATES

        keep_installed(self, [ITEM_STATES])

from django.urls import path

from loupe.insights import apis

_INSIGHTS = "projects/<slug:slug>/insights"
_EXPORTS = "projects/<slug:slug>/exports"

urlpatterns = [
    path(f"{_INSIGHTS}/classes/", apis.ClassBalanceApi.as_view(), name="insights-classes"),
    path(f"{_INSIGHTS}/imbalance/", apis.ImbalanceApi.as_view(), name="insights-imbalance"),
    path(f"{_INSIGHTS}/throughput/", apis.ThroughputApi.as_view(), name="insights-throughput"),
    path(f"{_INSIGHTS}/eta/", apis.EtaApi.as_view(), name="insights-eta"),
    path(f"{_INSIGHTS}/agreement/", apis.AgreementApi.as_view(), name="insights-agreement"),
    path(f"{_INSIGHTS}/drift/", apis.DriftApi.as_view(), name="insights-drift"),
    path(
        f"{_INSIGHTS}/learning-curve/",
        apis.LearningCurveApi.as_view(),
        name="insights-learning-curve",
    ),
    path(f"{_INSIGHTS}/stopping/", apis.StoppingApi.as_view(), name="insights-stopping"),
    path(f"{_EXPORTS}/ground-truth.csv", apis.ExportCsvApi.as_view(), name="export-csv"),
    path(f"{_EXPORTS}/ground-truth.jsonl", apis.ExportJsonlApi.as_view(), name="export-jsonl"),
    path(
        f"{_EXPORTS}/imagefolder.zip",
        apis.ExportImageFolderApi.as_view(),
        name="export-imagefolder",
    ),
    path(f"{_EXPORTS}/ground-truth.coco.json", apis.ExportCocoApi.as_view(), name="export-coco"),
    path(f"{_EXPORTS}/yolo.zip", apis.ExportYoloApi.as_view(), name="export-yolo"),
]

from django.urls import path

from loupe.learning import apis

urlpatterns = [
    path("projects/<slug:slug>/loops/", apis.ProjectLoopsApi.as_view(), name="loop-list"),
    path("loops/<int:loop_id>/", apis.LoopDetailApi.as_view(), name="loop-detail"),
    path("loops/<int:loop_id>/cancel/", apis.LoopCancelApi.as_view(), name="loop-cancel"),
    path(
        "projects/<slug:slug>/training-runs/",
        apis.ProjectTrainingRunsApi.as_view(),
        name="training-run-list",
    ),
    path("training-runs/<int:run_id>/", apis.TrainingRunDetailApi.as_view(), name="training-run"),
    path(
        "training-runs/<int:run_id>/cancel/",
        apis.TrainingRunCancelApi.as_view(),
        name="training-run-cancel",
    ),
    path("scoring-runs/<int:run_id>/", apis.ScoringRunDetailApi.as_view(), name="scoring-run"),
    path(
        "projects/<slug:slug>/model-versions/",
        apis.ProjectModelVersionsApi.as_view(),
        name="model-version-list",
    ),
    path(
        "model-versions/<int:version_id>/",
        apis.ModelVersionDetailApi.as_view(),
        name="model-version",
    ),
    path(
        "projects/<slug:slug>/predictions/",
        apis.ProjectPredictionsApi.as_view(),
        name="prediction-list",
    ),
    path(
        "model-versions/<int:version_id>/predictions.csv",
        apis.ModelVersionPredictionsCsvApi.as_view(),
        name="model-version-predictions-csv",
    ),
    path(
        "model-versions/<int:version_id>/predictions.jsonl",
        apis.ModelVersionPredictionsJsonlApi.as_view(),
        name="model-version-predictions-jsonl",
    ),
    path(
        "projects/<slug:slug>/selection-rounds/",
        apis.ProjectSelectionRoundsApi.as_view(),
        name="selection-round-list",
    ),
    path(
        "selection-rounds/<int:round_id>/",
        apis.SelectionRoundDetailApi.as_view(),
        name="selection-round",
    ),
]

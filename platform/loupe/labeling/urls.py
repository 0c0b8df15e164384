from django.urls import path

from loupe.labeling import apis

urlpatterns = [
    path("webhook/", apis.WebhookApi.as_view(), name="labeling-webhook"),
    path("projects/<slug:slug>/", apis.ProjectLabelingApi.as_view(), name="labeling-project"),
    path("projects/<slug:slug>/sync/", apis.ProjectSyncApi.as_view(), name="labeling-project-sync"),
    path(
        "projects/<slug:slug>/reconcile/",
        apis.ProjectReconcileApi.as_view(),
        name="labeling-project-reconcile",
    ),
    path(
        "projects/<slug:slug>/agreement/",
        apis.ProjectAgreementApi.as_view(),
        name="labeling-agreement",
    ),
    path("items/<int:item_id>/", apis.ItemLabelingApi.as_view(), name="labeling-item"),
    path("items/<int:item_id>/review/", apis.ItemReviewApi.as_view(), name="labeling-review"),
    path("rounds/<int:round_id>/", apis.RoundLabelingApi.as_view(), name="labeling-round"),
    path("rounds/<int:round_id>/push/", apis.RoundPushApi.as_view(), name="labeling-round-push"),
]

# Mounted under /api/v1/ beside the other project resources (loupe.api.urls).
project_urlpatterns = [
    path(
        "projects/<slug:slug>/label-review/",
        apis.LabelReviewApi.as_view(),
        name="label-review",
    ),
    path(
        "projects/<slug:slug>/label-review/send/",
        apis.LabelReviewSendApi.as_view(),
        name="label-review-send",
    ),
]

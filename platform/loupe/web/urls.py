from django.contrib.auth import views as auth_views
from django.urls import path

from loupe.web import dashboards, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.project_index, name="home"),
    path("projects/<slug:slug>/", dashboards.project_overview, name="project-overview"),
    path("projects/<slug:slug>/items/", views.project_items, name="project-items"),
    path("projects/<slug:slug>/items/<int:item_id>/", views.project_item, name="project-item"),
    path("projects/<slug:slug>/imports/", views.project_imports, name="project-imports"),
    path(
        "projects/<slug:slug>/imports/jobs/", views.project_import_jobs, name="project-import-jobs"
    ),
    path(
        "projects/<slug:slug>/imports/upload/",
        views.project_import_upload,
        name="project-import-upload",
    ),
    path("projects/<slug:slug>/labeling/", views.project_labelers, name="project-labelers"),
    path(
        "projects/<slug:slug>/label-review/",
        views.project_label_review,
        name="project-label-review",
    ),
    path(
        "projects/<slug:slug>/label-review/send/",
        views.project_label_review_send,
        name="project-label-review-send",
    ),
    path("projects/<slug:slug>/models/", dashboards.project_models, name="project-models"),
    path("projects/<slug:slug>/drift/", dashboards.project_drift, name="project-drift"),
    path("projects/<slug:slug>/jobs/", dashboards.project_jobs, name="project-jobs"),
    path("projects/<slug:slug>/loop/", dashboards.project_loop, name="project-loop"),
    path("projects/<slug:slug>/jobs/start/", dashboards.project_job_start, name="job-start"),
    path("loops/<int:loop_id>/cancel/", dashboards.loop_cancel_view, name="loop-cancel-page"),
    path(
        "projects/<slug:slug>/picks/<int:pick_id>/saliency.png",
        views.pick_saliency,
        name="pick-saliency",
    ),
]

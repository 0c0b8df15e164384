from django.urls import include, path

from loupe.accounts import apis as accounts
from loupe.datasets import apis as datasets
from loupe.labeling.urls import project_urlpatterns as labeling_project_urls
from loupe.projects import apis as projects

urlpatterns = [
    path("auth/token/", accounts.TokenObtainApi.as_view(), name="token-obtain"),
    path("me/", accounts.MeApi.as_view(), name="me"),
    path("users/", accounts.UserListCreateApi.as_view(), name="user-list"),
    path("projects/", projects.ProjectListCreateApi.as_view(), name="project-list"),
    path("projects/<slug:slug>/", projects.ProjectDetailApi.as_view(), name="project-detail"),
    path(
        "projects/<slug:slug>/classes/",
        projects.ProjectClassesSetApi.as_view(),
        name="project-classes",
    ),
    path(
        "projects/<slug:slug>/members/",
        projects.ProjectMembersApi.as_view(),
        name="project-members",
    ),
    path(
        "projects/<slug:slug>/members/<str:username>/",
        accounts.ProjectMemberDeleteApi.as_view(),
        name="project-member-detail",
    ),
    path("projects/<slug:slug>/items/", datasets.ItemListApi.as_view(), name="item-list"),
    path(
        "projects/<slug:slug>/imports/", datasets.ImportListCreateApi.as_view(), name="import-list"
    ),
    path("items/<int:item_id>/", datasets.ItemDetailApi.as_view(), name="item-detail"),
    path("items/<int:item_id>/file/", datasets.ItemFileApi.as_view(), name="item-file"),
    path("imports/<int:import_id>/", datasets.ImportDetailApi.as_view(), name="import-detail"),
    path("", include("loupe.learning.urls")),
    path("", include("loupe.insights.urls")),
    path("", include(labeling_project_urls)),
    path("labeling/", include("loupe.labeling.urls")),
]

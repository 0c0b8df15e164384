from django.contrib.auth import views as auth_views
from django.urls import path

from loupe.web import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.project_index, name="home"),
    path("projects/<slug:slug>/", views.project_items, name="project-items"),
    path("projects/<slug:slug>/imports/", views.project_imports, name="project-imports"),
]

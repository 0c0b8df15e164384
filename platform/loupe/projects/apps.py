from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "loupe.projects"
    label = "projects"

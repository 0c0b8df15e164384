"""What every project page needs: the project (or a 404 that does not leak it), the user's
role and what it allows, and the "Label now" link."""

from django.conf import settings
from django.http import Http404

from loupe.accounts.selectors import user_can, user_project_role
from loupe.errors import NotFoundError
from loupe.labeling.selectors import label_now_url
from loupe.projects.selectors import project_get

TABS = [
    ("overview", "Overview", "project-overview"),
    ("items", "Items", "project-items"),
    ("models", "Models", "project-models"),
    ("imports", "Imports", "project-imports"),
]


def project_or_404(request, slug):
    try:
        return project_get(user=request.user, slug=slug)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def project_context(request, project, *, tab: str) -> dict:
    user = request.user
    return {
        "project": project,
        "tab": tab,
        "tabs": TABS,
        "role": user_project_role(user=user, project=project),
        "can_label": user_can(user=user, project=project, action="label"),
        "can_run_jobs": user_can(user=user, project=project, action="run_jobs"),
        "can_import": user_can(user=user, project=project, action="import"),
        "can_export": user_can(user=user, project=project, action="export"),
        "label_now_url": label_now_url(project=project),
        "label_studio_url": settings.LABEL_STUDIO_URL,
    }

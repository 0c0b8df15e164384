"""What every project page needs: the project (or a 404 that does not leak it), the user's
role and what it allows, and the "Label now" link."""

from django.conf import settings
from django.http import Http404

from loupe.accounts.selectors import role_can, user_project_role
from loupe.errors import NotFoundError
from loupe.insights.selectors import loop_progress
from loupe.labeling.people import label_studio_login
from loupe.labeling.selectors import label_now_url
from loupe.projects.selectors import project_get

TABS = [
    ("overview", "Overview", "project-overview"),
    ("items", "Items", "project-items"),
    ("models", "Models", "project-models"),
    ("labelers", "For labelers", "project-labelers"),
    ("review", "Label review", "project-label-review"),
    ("imports", "Imports", "project-imports"),
]


def project_or_404(request, slug):
    try:
        return project_get(user=request.user, slug=slug)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def project_context(request, project, *, tab: str) -> dict:
    role = user_project_role(user=request.user, project=project)
    return {
        "project": project,
        "tab": tab,
        "tabs": TABS,
        "role": role,
        "can_label": role_can(role, "label"),
        "can_run_jobs": role_can(role, "run_jobs"),
        "can_import": role_can(role, "import"),
        "can_export": role_can(role, "export"),
        "label_now_url": label_now_url(project=project),
        "label_studio_url": settings.LABEL_STUDIO_URL,
        # The signed-in person's own Label Studio account, for the "Label now" button.
        "label_studio_login": label_studio_login(user=request.user)
        if role_can(role, "label")
        else None,
    }


def duration_words(seconds: float | None) -> str | None:
    """A time left as a person says it: "about 3 min", "under a minute"."""
    if seconds is None:
        return None
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min"


def loop_view(loop, seconds: dict[str, float] | None) -> dict:
    """A loop's progress (insights.loop_progress) with what the pages print: the percent and
    the time left in words."""
    state = loop_progress(loop=loop, seconds=seconds)
    state["percent"] = round(state["progress"] * 100)
    state["eta_words"] = duration_words(state["eta_seconds"])
    return state

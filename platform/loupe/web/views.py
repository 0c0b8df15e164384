"""Server-rendered pages. Like the API views, they only call selectors and render."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import render

from loupe.accounts.selectors import user_can, user_project_role
from loupe.api.errors import error_body
from loupe.datasets.models import ItemState, Split
from loupe.datasets.selectors import import_job_list, item_list, item_sources
from loupe.errors import NotFoundError
from loupe.projects.selectors import project_classes, project_get, project_list

GALLERY_PAGE_SIZE = 60


def _project_or_404(request, slug):
    try:
        return project_get(user=request.user, slug=slug)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
def project_index(request):
    projects = project_list(user=request.user).annotate(item_count=Count("items"))
    return render(request, "projects/index.html", {"projects": projects})


@login_required
def project_items(request, slug):
    project = _project_or_404(request, slug)
    filters = {k: request.GET.get(k, "") for k in ("state", "split", "label", "source")}
    items = item_list(project=project, filters=filters).order_by("-id")
    page = Paginator(items, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    counts = dict(
        item_list(project=project)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return render(
        request,
        "projects/items.html",
        {
            "project": project,
            "page": page,
            "filters": filters,
            "classes": project_classes(project=project),
            "sources": item_sources(project=project),
            "states": ItemState.choices,
            "splits": Split.choices,
            "state_counts": [(label, counts.get(value, 0)) for value, label in ItemState.choices],
            "role": user_project_role(user=request.user, project=project),
            "can_import": user_can(user=request.user, project=project, action="import"),
            "query": _query_without_page(request),
        },
    )


@login_required
def project_imports(request, slug):
    project = _project_or_404(request, slug)
    return render(
        request,
        "projects/imports.html",
        {"project": project, "jobs": import_job_list(project=project)[:50]},
    )


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return render(request, "errors/404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        message = "Something went wrong on the server; it has been logged."
        return JsonResponse(error_body("server_error", message), status=500)
    return render(request, "errors/500.html", status=500)

"""Server-rendered pages. Like the API views, they only call selectors and render."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render

from loupe.api.errors import error_body
from loupe.datasets.models import ItemState, Split
from loupe.datasets.selectors import import_job_list, item_sources
from loupe.insights.gallery import ORDERS, UNCERTAINTY_LEVELS, gallery_details, gallery_items
from loupe.insights.selectors import latest_scored_version, project_item_totals, state_counts
from loupe.projects.selectors import project_classes, project_list
from loupe.web.common import project_context, project_or_404

GALLERY_PAGE_SIZE = 60
GALLERY_FILTERS = ("state", "split", "label", "source", "uncertainty", "order")


@login_required
def project_index(request):
    projects = project_item_totals(project_list(user=request.user))
    return render(request, "projects/index.html", {"projects": projects})


@login_required
def project_items(request, slug):
    project = project_or_404(request, slug)
    filters = {k: request.GET.get(k, "") for k in GALLERY_FILTERS}
    items = gallery_items(project=project, filters=filters)
    page = Paginator(items, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    details = gallery_details(project=project, items=list(page.object_list))
    counts = state_counts(project)
    return render(
        request,
        "projects/items.html",
        {
            **project_context(request, project, tab="items"),
            "page": page,
            "tiles": [(item, details[item.pk]) for item in page.object_list],
            "filters": filters,
            "classes": project_classes(project=project),
            "sources": item_sources(project=project),
            "states": ItemState.choices,
            "splits": Split.choices,
            "uncertainty_levels": UNCERTAINTY_LEVELS,
            "orders": ORDERS,
            "scored_version": latest_scored_version(project),
            "state_counts": [(label, counts.get(value, 0)) for value, label in ItemState.choices],
            "query": _query_without_page(request),
        },
    )


@login_required
def project_imports(request, slug):
    project = project_or_404(request, slug)
    return render(
        request,
        "projects/imports.html",
        {
            **project_context(request, project, tab="imports"),
            "jobs": import_job_list(project=project)[:50],
        },
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

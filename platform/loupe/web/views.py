"""Server-rendered pages. Like the API views, they call selectors and services and render."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from loupe.accounts.lockout import LoginLockedOut, login_check
from loupe.accounts.selectors import user_can
from loupe.api.errors import error_body
from loupe.datasets.models import Item, ItemState, JobStatus, Split
from loupe.datasets.selectors import import_job_list, import_rejections, item_sources
from loupe.datasets.services import import_upload_save
from loupe.datasets.uploads import upload_size_check
from loupe.errors import ApplicationError
from loupe.insights.detection import is_detection_project, page_boxes
from loupe.insights.gallery import ORDERS, UNCERTAINTY_LEVELS, gallery_details, gallery_items
from loupe.insights.labelers import labelers_page
from loupe.insights.selectors import latest_scored_version, project_item_totals, state_counts
from loupe.labeling.review import label_review_queue, label_review_send
from loupe.learning.explanations import pick_explanations, pick_saliency_name
from loupe.projects.selectors import project_classes, project_list
from loupe.tasktypes.pair_verification import PAIR_VERIFICATION
from loupe.web.common import project_context, project_or_404

GALLERY_PAGE_SIZE = 60
GALLERY_FILTERS = ("state", "split", "label", "source", "uncertainty", "order")


class LoginView(auth_views.LoginView):
    """The sign-in page. After repeated failures it answers 429 (with Retry-After) and says
    how long to wait, without checking the password."""

    template_name = "login.html"

    def post(self, request, *args, **kwargs):
        try:
            login_check(request=request, username=request.POST.get("username"))
        except LoginLockedOut as exc:
            # An unbound form: a bound one would check the password while showing errors.
            form = self.get_form_class()(request)
            context = self.get_context_data(form=form, locked_out=exc.message)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        return super().post(request, *args, **kwargs)


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
    explanations = pick_explanations(item_ids=details)
    for item_id, explanation in explanations.items():
        details[item_id]["explanation"] = explanation
    detection = is_detection_project(project)
    if detection:
        for item_id, boxes in page_boxes(project=project, items=list(page.object_list)).items():
            details[item_id]["boxes"] = boxes
    counts = state_counts(project)
    return render(
        request,
        "projects/items.html",
        {
            **project_context(request, project, tab="items"),
            "page": page,
            "tiles": [(item, details[item.pk]) for item in page.object_list],
            "any_saliency": any(e["has_saliency"] for e in explanations.values()),
            "is_pair_project": project.task_type == PAIR_VERIFICATION,
            "is_detection_project": detection,
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
def project_item(request, slug, item_id):
    """One page of a detection project, large: its true boxes and the latest model's,
    each with its class name, and both lists. Other task types have no such page."""
    project = project_or_404(request, slug)
    if not is_detection_project(project):
        raise Http404("Only pages of a detection project have a page of their own.")
    item = Item.objects.filter(project=project, pk=item_id).select_related("ground_truth").first()
    if item is None:
        raise Http404("No such page in this project.")
    details = gallery_details(project=project, items=[item])[item.pk]
    return render(
        request,
        "projects/item.html",
        {
            **project_context(request, project, tab="items"),
            "item": item,
            "d": details,
            "boxes": page_boxes(project=project, items=[item])[item.pk],
        },
    )


IMPORTS_SHOWN = 50
REJECTIONS_SHOWN = 10


def _imports_context(request, project) -> dict:
    jobs = list(import_job_list(project=project)[:IMPORTS_SHOWN])
    for job in jobs:
        job.shown_rejections = (
            import_rejections(job=job, limit=REJECTIONS_SHOWN) if job.rejected else []
        )
        job.is_active = job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        job.percent = round(job.progress * 100)
    return {
        **project_context(request, project, tab="imports"),
        "jobs": jobs,
        "active": any(job.is_active for job in jobs),
    }


@login_required
def project_imports(request, slug):
    project = project_or_404(request, slug)
    return render(request, "projects/imports.html", _imports_context(request, project))


@login_required
def project_import_jobs(request, slug):
    """The imports table as a fragment; it polls itself while an import runs."""
    project = project_or_404(request, slug)
    return render(request, "projects/_imports.html", _imports_context(request, project))


@login_required
@require_POST
def project_import_upload(request, slug):
    """Stores an uploaded zip and queues its import, then shows the imports page, where the
    new import's progress follows."""
    project = project_or_404(request, slug)
    if not user_can(user=request.user, project=project, action="import"):
        return HttpResponseForbidden("Only admins and ML engineers of this project import.")
    upload = request.FILES.get("file")
    # Without a tag, the service names the source after the archive.
    options = {}
    if tag := request.POST.get("source_tag", "").strip():
        options["source_tag"] = tag[:100]
    error, status = None, 400
    try:
        upload_size_check(request=request)
        if upload is None:
            error = "Choose a .zip archive to upload."
        else:
            import_upload_save(
                project=project, uploaded_file=upload, created_by=request.user, **options
            )
    except ApplicationError as exc:
        error, status = exc.message, exc.status
    if error is None:
        return redirect("project-imports", slug=project.slug)
    context = {**_imports_context(request, project), "upload_error": error}
    return render(request, "projects/imports.html", context, status=status)


@login_required
def pick_saliency(request, slug, pick_id):
    """A pick's saliency overlay (PNG), for the people of its project."""
    project = project_or_404(request, slug)
    name = pick_saliency_name(project=project, pick_id=pick_id)
    if name is None or not default_storage.exists(name):
        raise Http404("This pick has no saliency overlay.")
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def project_labelers(request, slug):
    """For the people who label: the method in plain words, why they see these items, where
    the model is confused and how their agreement compares with the others'."""
    project = project_or_404(request, slug)
    context = {
        **project_context(request, project, tab="labelers"),
        **labelers_page(project=project, user=request.user),
    }
    return render(request, "projects/labelers.html", context)


def _label_review_context(request, project) -> dict:
    return {
        **project_context(request, project, tab="review"),
        "queue": label_review_queue(project=project),
    }


@login_required
def project_label_review(request, slug):
    """The labels the latest model doubts, with their evidence, and the review rounds."""
    project = project_or_404(request, slug)
    return render(request, "projects/label_review.html", _label_review_context(request, project))


@login_required
@require_POST
def project_label_review_send(request, slug):
    """Sends the listed suspects to Label Studio as a review round, then shows the page."""
    project = project_or_404(request, slug)
    if not user_can(user=request.user, project=project, action="run_jobs"):
        return HttpResponseForbidden("Only admins and ML engineers of this project send reviews.")
    status = 200
    try:
        sent = label_review_send(project=project)
        notice = (
            f"Review round {sent.number} with {sent.batch_size} labels is on its way to"
            " Label Studio."
        )
    except ApplicationError as exc:
        notice, status = exc.message, exc.status
    context = {**_label_review_context(request, project), "notice": notice}
    return render(request, "projects/label_review.html", context, status=status)


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

"""The project overview (managers), the models page (engineers) and their htmx partials:
live job progress and the drift tests. Views call selectors and services, then render."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden
from django.shortcuts import render
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from loupe.accounts.selectors import user_can
from loupe.errors import ApplicationError, NotFoundError
from loupe.insights import selectors as insights
from loupe.insights.curves import baseline_comparison
from loupe.insights.detection import detection_box_counts, detection_holdout, is_detection_project
from loupe.insights.loops import loop_status
from loupe.insights.pace import MIN_LABELS_FOR_HIT_RATE
from loupe.insights.verification import far_note, verification_summary
from loupe.learning.loop import loop_active, loop_cancel, loop_start
from loupe.learning.models import ACTIVE_STATUSES, LearningLoop, ModelVersion
from loupe.learning.selectors import loop_get
from loupe.tasktypes.pair_verification import PAIR_VERIFICATION
from loupe.web.common import loop_view, project_context, project_or_404

RECENT_LOOPS = 5


@login_required
def project_overview(request, slug):
    project = project_or_404(request, slug)
    balance = insights.class_balance(project=project)
    pace = insights.throughput(project=project, days=14)
    curve = insights.learning_curve(project=project)["versions"]
    eta = insights.eta(project=project, days=14)
    for row, when in zip(balance["classes"], eta["classes"], strict=True):
        row["eta"] = when
    return render(
        request,
        "projects/overview.html",
        {
            **project_context(request, project, tab="overview"),
            **_loop_card_context(project),
            "balance": balance,
            "imbalance": insights.imbalance(project=project),
            "augmentations": _augmentations(project),
            "pace": pace,
            "eta": eta,
            "eta_min_labels": MIN_LABELS_FOR_HIT_RATE,
            "label_rate": _label_rate(eta),
            "curve": curve,
            "stopping": insights.stopping(project=project),
            "throughput_chart": {
                "labels": [d["day"][5:] for d in pace["per_day"]],
                "annotations": [d["annotations"] for d in pace["per_day"]],
                "ground_truth": [d["labels"] for d in pace["per_day"]],
            },
            "curve_chart": _detection_curve_chart(project)
            if is_detection_project(project)
            else _curve_chart(curve),
            **_comparison(curve),
            "detection": _detection(project),
        },
    )


def _augmentations(project) -> str | None:
    """What training does to each image of a batch, in the task type's words (from its
    training options for the project's `augmentations`); None where it takes no such
    setting."""
    from loupe.tasktypes import task_type_of

    kind = task_type_of(project)
    if kind.augmentation() is None:
        return None
    options = kind.train_options(config={"augmentations": project.augmentations or {}})
    return kind.augmentation_sentence(options.get("augment"))


def _detection(project) -> dict | None:
    """For a detection project, its boxes per class against the targets and the latest
    version's holdout mAP@0.5 per class; None for the other task types."""
    if not is_detection_project(project):
        return None
    return {
        "counts": detection_box_counts(project=project),
        "holdout": detection_holdout(project=project),
    }


def _detection_curve_chart(project) -> dict:
    """A detection project's learning curve: holdout mAP@0.5 with its interval by labeled
    pages used. The chart names every other series a holdout figure, and the one detection
    has (the model on its own training pages) is not: the overview gives it in words.
    Neither a majority class nor a control slice has a mAP."""
    versions = list(
        ModelVersion.objects.filter(project=project)
        .order_by("version")
        .values("version", "labels_used", "metrics")
    )
    return {
        "metric": "mAP@0.5",
        "labels_axis": "labeled pages used",
        "labels": [v["labels_used"] for v in versions],
        "versions": [v["version"] for v in versions],
        "model": [(v["metrics"] or {}).get("map50") for v in versions],
        "model_interval": [
            ((v["metrics"] or {}).get("intervals") or {}).get("map50") for v in versions
        ],
        "baseline": [None for _ in versions],
        "baseline_name": "",
        "majority": [None for _ in versions],
        "control": [None for _ in versions],
        "control_n": [0 for _ in versions],
    }


def _comparison(curve: list[dict]) -> dict:
    """The latest version against its baselines: for a pair project the verification
    figures (ROC AUC, EER, TAR at FAR 1%, beside the baseline's ROC AUC), else the
    balanced-accuracy verdict."""
    verification = verification_summary(curve)
    if verification is not None:
        return {"verification": verification, "baselines": None}
    return {"verification": None, "baselines": baseline_comparison(curve)}


def _label_rate(eta: dict) -> dict:
    """The pace stat: per day once a day has passed since the window's first new label,
    per hour before, with the span it was measured over."""
    if not eta["recent_labels"]:
        return {"value": 0, "unit": "new labels", "span": f"last {eta['days']} days"}
    hours = eta["rate_span_hours"]
    span = f"{eta['recent_labels']} in the last " + (
        "hour" if hours < 1.05 else f"{hours:.1f} hours" if hours < 24 else f"{hours / 24:.1f} days"
    )
    if eta["labels_per_day"] is None:
        return {"value": f"{eta['labels_per_hour']:.1f}", "unit": "labels an hour", "span": span}
    return {"value": f"{eta['labels_per_day']:.1f}", "unit": "labels a day", "span": span}


def _curve_chart(curve: list[dict]) -> dict:
    """The learning curve's series: the model and both baselines on the holdout, and the
    model on the random control slice (random pool items it scored, labeled afterwards).
    For pairs the holdout series are ROC AUC (model with its interval, and the baseline
    without learning), as the verification figures beside it are."""
    if any(p.get("roc_auc") is not None for p in curve):
        return {
            "metric": "ROC AUC",
            "labels_axis": "labeled pairs used",
            "labels": [p["labels_used"] for p in curve],
            "versions": [p["version"] for p in curve],
            "model": [p["roc_auc"] for p in curve],
            "model_interval": [p["roc_auc_interval"] for p in curve],
            "baseline": [p["baseline_roc_auc"] for p in curve],
            "baseline_name": next(
                (p["baseline_name"].split(",")[0] for p in reversed(curve) if p["baseline_name"]),
                "baseline",
            ),
            # Neither has a ROC AUC: no majority baseline, and the control slice's figure is
            # a balanced accuracy, which this axis does not show.
            "majority": [None for _ in curve],
            "control": [None for _ in curve],
            "control_n": [p["control"]["n"] for p in curve],
        }
    return {
        "metric": "balanced accuracy",
        "labels": [p["labels_used"] for p in curve],
        "versions": [p["version"] for p in curve],
        "model": [p["balanced_accuracy"] for p in curve],
        "model_interval": [p["balanced_accuracy_interval"] for p in curve],
        "baseline": [p["baseline_balanced_accuracy"] for p in curve],
        "baseline_name": next(
            (p["baseline_name"] for p in reversed(curve) if p["baseline_name"]), "linear probe"
        ),
        "majority": [p["majority_balanced_accuracy"] for p in curve],
        "control": [p["control"]["balanced_accuracy"] for p in curve],
        "control_n": [p["control"]["n"] for p in curve],
    }


def _reliability(version: ModelVersion) -> dict | None:
    """The chosen version's reliability diagram on the holdout: per confidence bin the items
    in it and their accuracy, as the model gives its probabilities and after temperature
    scaling, from the first bin holding an item to the last. None for a version trained
    without a holdout or before calibration was measured."""
    calibration = (version.metrics or {}).get("calibration")
    if not calibration or not calibration.get("n"):
        return None
    before = calibration["before"]["bins"]
    after = (calibration.get("after") or {}).get("bins")
    used = [i for i, b in enumerate(before) if b["count"] or (after and after[i]["count"])]
    span = range(used[0], used[-1] + 1) if used else range(0)
    return {
        "bins": [f"{before[i]['low']:.2f}–{before[i]['high']:.2f}" for i in span],
        "midpoints": [(before[i]["low"] + before[i]["high"]) / 2 for i in span],
        "before": {
            "accuracy": [before[i]["accuracy"] for i in span],
            "confidence": [before[i]["confidence"] for i in span],
            "count": [before[i]["count"] for i in span],
            "ece": calibration["before"]["ece"],
        },
        "after": None
        if after is None
        else {
            "accuracy": [after[i]["accuracy"] for i in span],
            "confidence": [after[i]["confidence"] for i in span],
            "count": [after[i]["count"] for i in span],
            "ece": calibration["after"]["ece"],
        },
        "temperature": calibration["temperature"],
        "fitted": calibration["fitted"],
        "n": calibration["n"],
        "n_bins": calibration["n_bins"],
        "note": calibration["note"],
    }


def _loop_card_context(project) -> dict:
    """The project's active loop (or its latest) for the overview's loop card, with the
    model version and batch it produced once it ended."""
    loop = insights.loop_current(project=project)
    state = loop_view(loop, insights.step_seconds(project=project)) if loop else None
    version = None
    if loop is not None and loop.training_run_id:
        version = (
            ModelVersion.objects.filter(training_run_id=loop.training_run_id)
            .values_list("version", flat=True)
            .first()
        )
    return {
        "loop": loop,
        "loop_state": state,
        "loop_version": version,
        "loop_ended": _ago(loop.finished_at) if loop is not None else None,
        # Between loops, what the next one waits for; while one runs, the card shows it.
        "loop_status": None
        if state is not None and state["active"]
        else loop_status(project=project)["message"],
    }


def _ago(moment) -> str:
    if moment is None:
        return ""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@login_required
def project_loop(request, slug):
    """The overview's loop card; it polls itself while the loop is active. When the loop
    ends under the page's eyes, the card says so: the rest of the page shows the numbers of
    before it."""
    project = project_or_404(request, slug)
    context = {**project_context(request, project, tab="overview"), **_loop_card_context(project)}
    context["ended_while_watching"] = bool(
        request.headers.get("HX-Request")
        and context["loop_state"]
        and not context["loop_state"]["active"]
    )
    return render(request, "projects/_loop.html", context)


@login_required
def project_drift(request, slug):
    """The drift tests as a fragment, loaded after the page: the first computation for a new
    scoring takes seconds."""
    project = project_or_404(request, slug)
    return render(request, "projects/_drift.html", {"drift": insights.drift(project=project)})


@login_required
def project_models(request, slug):
    project = project_or_404(request, slug)
    versions, curve = _versions(project)
    chosen = versions[0][0] if versions else None
    wanted = request.GET.get("v", "")
    if wanted.isascii() and wanted.isdigit() and len(wanted) <= 18:
        chosen = next((v for v, _ in versions if v.version == int(wanted)), chosen)
    return render(
        request,
        "projects/models.html",
        {
            **project_context(request, project, tab="models"),
            "versions": versions,
            "chosen": chosen,
            "confusion": _confusion(chosen) if chosen else None,
            "reliability": _reliability(chosen) if chosen else None,
            "curve": curve,
            "curve_chart": _curve_chart(curve),
            **_comparison(curve),
            "is_pair_project": project.task_type == PAIR_VERIFICATION,
            "pair_far_note": far_note((chosen.metrics or {}).get("far_resolution"))
            if chosen
            else None,
            "jobs": _jobs_context(request, project),
        },
    )


def _versions(project) -> tuple[list[tuple[ModelVersion, dict | None]], list[dict]]:
    """The project's model versions, newest first, each with its control-slice score, and
    the learning curve they come from."""
    curve = insights.learning_curve(project=project)["versions"]
    control = {p["version"]: p["control"] for p in curve}
    versions = ModelVersion.objects.filter(project=project).order_by("-version")
    return [(v, control.get(v.version)) for v in versions], curve


def _confusion(version: ModelVersion) -> dict | None:
    """Rows of the holdout confusion matrix with each cell's share of its row, for shading."""
    matrix = (version.metrics or {}).get("confusion_matrix")
    if not matrix:
        return None
    names = version.class_names
    rows = []
    for name, row in zip(names, matrix, strict=False):
        total = sum(row) or 1
        rows.append(
            {
                "name": name,
                "cells": [
                    {"n": n, "share": n / total, "diagonal": j == i}
                    for j, n in enumerate(row)
                    for i in [names.index(name)]
                ],
                "total": sum(row),
            }
        )
    return {"names": names, "rows": rows}


def _jobs_context(request, project) -> dict:
    loops = list(
        LearningLoop.objects.filter(project=project)
        .select_related("training_run", "scoring_run", "selection_round")
        .order_by("-id")[:RECENT_LOOPS]
    )
    # One query for the model versions the loops' training runs made (one per run at most).
    versions = dict(
        ModelVersion.objects.filter(
            training_run_id__in=[loop.training_run_id for loop in loops if loop.training_run_id]
        ).values_list("training_run_id", "version")
    )
    seconds = insights.step_seconds(project=project)
    for loop in loops:
        loop.state = loop_view(loop, seconds)
        loop.percent = loop.state["percent"]
        loop.is_active = loop.state["active"]
        loop.version = versions.get(loop.training_run_id)
    return {
        "project": project,
        "loops": loops,
        "active": any(loop.is_active for loop in loops),
        "can_run_jobs": user_can(user=request.user, project=project, action="run_jobs"),
    }


@login_required
def project_jobs(request, slug):
    """The jobs fragment; it polls itself while a loop is active."""
    project = project_or_404(request, slug)
    context = _jobs_context(request, project)
    if request.headers.get("HX-Request") and not context["active"]:
        # The loop ended while the page watched it: the versions box is swapped in anew
        # beside the jobs; charts and the confusion matrix follow when a version is opened.
        context["notice"] = "The loop has ended."
        context["versions_oob"] = _versions(project)[0]
        context["chosen"] = None
    return render(request, "projects/_jobs.html", context)


@login_required
@require_POST
def project_job_start(request, slug):
    project = project_or_404(request, slug)
    if not user_can(user=request.user, project=project, action="run_jobs"):
        return HttpResponseForbidden("Only admins and ML engineers of this project start jobs.")
    already = loop_active(project=project) is not None
    refused = None
    if not already:
        # Retraining on the labels the latest model has seen gives the same model and a new
        # batch for nothing: the page asks first, and starts it only when told to.
        try:
            loop_start(
                project=project, created_by=request.user, force=request.POST.get("force") == "1"
            )
        except ApplicationError as exc:
            refused = exc
    context = _jobs_context(request, project)
    if already:
        context["notice"] = "A loop is already running; it picks up the new labels."
    elif refused is not None and "latest_version" in refused.extra:
        context["notice"] = (
            f"No new labels since model v{refused.extra['latest_version']}: retraining would "
            "give the same model and a new batch."
        )
        context["offer_force"] = True
    elif refused is not None:
        context["notice"] = refused.message
    return render(request, "projects/_jobs.html", context)


@login_required
@require_POST
def loop_cancel_view(request, loop_id):
    try:
        loop = loop_get(user=request.user, loop_id=loop_id)
    except NotFoundError:
        return HttpResponseForbidden("No such loop in your projects.")
    if not user_can(user=request.user, project=loop.project, action="run_jobs"):
        return HttpResponseForbidden("Only admins and ML engineers of this project cancel jobs.")
    if loop.status in ACTIVE_STATUSES:
        loop_cancel(loop=loop)
    return render(request, "projects/_jobs.html", _jobs_context(request, loop.project))

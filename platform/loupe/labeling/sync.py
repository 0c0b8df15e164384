"""Loupe -> Label Studio: the project twin (config, guidelines, overlap, media, webhook) and
the push of selection rounds as tasks with pre-annotations.

Every Label Studio call goes through `loupe.labeling.adapter`. Each step is safe to run
twice: a project is linked by the id Loupe stores, a round is pushed only while it is a
draft, and the adapter finds tasks a cut-short push already created.
"""

from __future__ import annotations

import html
import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from loupe import jobs
from loupe.datasets.models import Item, ItemState
from loupe.errors import ApplicationError
from loupe.labeling import adapter
from loupe.labeling.ls_payloads import IMAGE_FIELD
from loupe.labeling.models import Annotation, LabelStudioSync
from loupe.labeling.people import project_label_studio_users_ensure
from loupe.learning.models import SelectionItem, SelectionRound
from loupe.projects.models import Project
from loupe.projects.selectors import project_classes
from loupe.tasktypes import task_type_of

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/v1/labeling/webhook/"
# Label Studio sends this header with every webhook; the endpoint compares it to the secret.
WEBHOOK_SECRET_HEADER = "X-Loupe-Webhook-Secret"
# A claim outlives any healthy push or reconciliation; a crashed worker's claim expires.
CLAIM_SECONDS = 600


def ls_client():
    """A Label Studio client from the settings. Few SDK retries: Celery retries with backoff."""
    return adapter.client_for(
        settings.LABEL_STUDIO_URL,
        settings.LABEL_STUDIO_API_TOKEN,
        timeout=settings.LABEL_STUDIO_TIMEOUT,
        max_retries=settings.LABEL_STUDIO_MAX_RETRIES,
    )


def ls_public_url() -> str:
    """Label Studio as a browser reaches it (may differ from the address workers use)."""
    return settings.LABEL_STUDIO_PUBLIC_URL or settings.LABEL_STUDIO_URL


def webhook_url() -> str:
    return settings.LOUPE_PUBLIC_URL.rstrip("/") + WEBHOOK_PATH


def sync_state(*, project: Project) -> LabelStudioSync:
    state, _ = LabelStudioSync.objects.get_or_create(project=project)
    return state


def claim(*, project: Project, kind: str) -> bool:
    """Takes the project's push or reconcile claim; False when another worker holds it."""
    field = f"{kind}_claimed_until"
    sync_state(project=project)
    now = timezone.now()
    free = Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": now})
    taken = (
        LabelStudioSync.objects.filter(project=project)
        .filter(free)
        .update(**{field: now + timedelta(seconds=CLAIM_SECONDS)})
    )
    return taken == 1


def release(*, project: Project, kind: str) -> None:
    LabelStudioSync.objects.filter(project=project).update(**{f"{kind}_claimed_until": None})


def _instruction_html(guidelines: str) -> str:
    paragraphs = [p.strip() for p in guidelines.split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def _media_folder(subfolder: str = "items") -> Path:
    # Label Studio serves files under its LOCAL_FILES_DOCUMENT_ROOT, which is Loupe's media
    # root (or the same folder mounted elsewhere); items live in its `items/` subfolder,
    # the picks' saliency overlays in `explain/`.
    root = Path(settings.LABEL_STUDIO_MEDIA_ROOT or settings.MEDIA_ROOT)
    return root / subfolder


def _guard_class_removal(project: Project, state: LabelStudioSync, classes: list[str]) -> None:
    removed = [name for name in state.synced_classes if name not in classes]
    for name in removed:
        # Label Studio accepts a config without a class its annotations use; Loupe does not.
        # Annotations of a class Loupe no longer has keep their result but lose the link.
        orphans = Annotation.objects.filter(
            project=project, was_cancelled=False, label_class__isnull=True
        ).values_list("result", flat=True)
        answer = task_type_of(project).read_answer
        if any(name in answer(result) for result in orphans.iterator()):
            raise ApplicationError(
                f"Class '{name}' has annotations in Label Studio and cannot be removed.",
                code="conflict",
                extra={"class": name},
            )


def _largest_image_side(project: Project) -> int | None:
    sides = Item.objects.filter(project=project).aggregate(w=Max("width"), h=Max("height"))
    known = [side for side in sides.values() if side]
    return max(known) if known else None


def project_sync(*, project: Project, client=None) -> int:
    """Creates or updates the Label Studio project of `project`; returns its id.

    The labeling config comes from the task type, the ordered classes and the guidelines
    (also shown as the expert instruction); the overlap is `annotator_overlap`. A new link
    also gets the local-files storage for Loupe's media and the webhook to Loupe with the
    shared secret. Removing a class whose annotations reached Loupe is refused. Every member
    who may label gets their own Label Studio user (`people`).
    """
    client = client or ls_client()
    names = [c.name for c in project_classes(project=project)]
    if not names:
        raise ApplicationError("Give the project at least one class before labeling starts.")
    state = sync_state(project=project)
    _guard_class_removal(project, state, names)
    try:
        config = task_type_of(project).label_config(
            classes=names, guidelines=project.guidelines, image_px=_largest_image_side(project)
        )
    except ValueError as exc:
        raise ApplicationError(str(exc)) from exc
    ls_project_id = adapter.project_ensure(
        client,
        title=f"{project.name} ({project.slug})"[:50],
        label_config=config,
        expert_instruction=_instruction_html(project.guidelines),
        description=project.description,
        overlap=project.annotator_overlap,
        ls_project_id=project.ls_project_id,
    )
    for subfolder in ("items", "explain"):
        folder = _media_folder(subfolder)
        folder.mkdir(parents=True, exist_ok=True)
        adapter.local_storage_ensure(client, project_id=ls_project_id, path=str(folder))
    adapter.webhook_ensure(
        client,
        project_id=ls_project_id,
        url=webhook_url(),
        secret_header=(WEBHOOK_SECRET_HEADER, settings.LABEL_STUDIO_WEBHOOK_SECRET),
    )
    if ls_project_id != project.ls_project_id:
        Project.objects.filter(pk=project.pk).update(ls_project_id=ls_project_id)
        project.ls_project_id = ls_project_id
    LabelStudioSync.objects.filter(pk=state.pk).update(synced_classes=names)
    project_label_studio_users_ensure(project=project, client=client)
    # A newly linked project with a pool gets its first batch without a manual trigger.
    jobs.enqueue(jobs.KICKOFF, project_id=project.pk)
    return ls_project_id


def project_changed(*, project: Project) -> None:
    """Call after classes, guidelines or overlap change: a linked project syncs in a worker."""
    if project.ls_project_id:
        jobs.enqueue(jobs.SYNC_PROJECT, project_id=project.pk)


def round_selected(*, selection_round: SelectionRound) -> None:
    """The hook after a loop selects a batch: push it to Label Studio in a worker."""
    jobs.enqueue(jobs.PUSH_ROUND, selection_round_id=selection_round.pk)


def _model_version_name(selection_round: SelectionRound) -> str | None:
    version = selection_round.model_version
    return f"loupe-v{version.version}" if version is not None else None


def push_tasks(selection_round: SelectionRound) -> list[tuple[SelectionItem, adapter.PushTask]]:
    """The round's picks as Label Studio tasks, most informative (lowest rank) first.

    Every pre-annotation carries the one model version name PREDICTION_MODEL_VERSION, so
    the tasks of earlier rounds keep theirs after a retrain; the task data names the Loupe
    version that picked it, and carries the pick's saliency overlay and nearest labeled
    items where it has them."""
    version = _model_version_name(selection_round)
    picks = list(
        SelectionItem.objects.filter(selection_round=selection_round)
        .select_related("item", "predicted_class")
        .order_by("rank")
    )
    near_ids = {n["item_id"] for pick in picks for n in pick.neighbours}
    near_files = dict(Item.objects.filter(pk__in=near_ids).values_list("id", "file"))
    kind = task_type_of(selection_round.project)
    out = []
    for pick in picks:
        prediction = kind.pick_pre_annotation(pick=pick) if version else None
        data = kind.task_data(file=pick.item.file.name, extra_files=pick.item.extra_files or ())
        task = adapter.PushTask(
            item_id=pick.item_id,
            round_id=selection_round.pk,
            image=data.pop(IMAGE_FIELD, ""),
            extra_data=tuple(data.items()),
            reason=pick.reason,
            prediction=prediction,
            model_version=version or "",
            saliency=adapter.local_file_url(pick.saliency.name) if pick.saliency else "",
            explained_class=pick.predicted_class.name if pick.predicted_class else "",
            neighbours=tuple(
                adapter.PushNeighbour(
                    item_id=n["item_id"],
                    label=n["label"],
                    image=adapter.local_file_url(near_files[n["item_id"]]),
                )
                for n in pick.neighbours
                if n["item_id"] in near_files  # an item deleted since has no image
            ),
        )
        out.append((pick, task))
    return out


def selection_round_push(*, selection_round: SelectionRound, client=None) -> SelectionRound:
    """Makes Label Studio tasks of a draft round; the round becomes `pushed`.

    Idempotent: a pushed round is left alone, and a push repeated after an outage finds the
    tasks already created. While Label Studio is unreachable the round stays a draft with
    `push_error` and `push_attempts` recorded, and `LabelStudioUnavailable` is raised for
    the caller to retry later; a refusal (`LabelStudioError`, `ApplicationError`) is
    recorded the same way and raised. Another worker pushing the same project makes this one a
    no-op (the caller's retry or the periodic resume pushes the round later).
    """
    project = selection_round.project
    if selection_round.status != SelectionRound.Status.DRAFT:
        return selection_round
    if not claim(project=project, kind="push"):
        logger.info("push of %s skipped: another push of the project runs", selection_round)
        return selection_round
    try:
        selection_round.refresh_from_db()
        if selection_round.status != SelectionRound.Status.DRAFT:
            return selection_round
        SelectionRound.objects.filter(pk=selection_round.pk).update(
            push_attempts=selection_round.push_attempts + 1
        )
        selection_round.push_attempts += 1
        try:
            client = client or ls_client()
            ls_project_id = project_sync(project=project, client=client)
            pairs = push_tasks(selection_round)
            mapping = adapter.tasks_push(client, ls_project_id, [t for _, t in pairs])
        except (adapter.LabelStudioError, ApplicationError) as exc:
            SelectionRound.objects.filter(pk=selection_round.pk).update(push_error=str(exc)[:2000])
            selection_round.push_error = str(exc)[:2000]
            raise
        with transaction.atomic():
            for pick, _ in pairs:
                pick.ls_task_id = mapping[pick.item_id]
            # Small batches: bulk_update's CASE costs rows x batch on SQLite.
            SelectionItem.objects.bulk_update([p for p, _ in pairs], ["ls_task_id"], 100)
            Item.objects.filter(
                pk__in=[p.item_id for p, _ in pairs],
                state__in=[ItemState.UNLABELED, ItemState.QUEUED],
            ).update(state=ItemState.IN_ANNOTATION)
            SelectionRound.objects.filter(pk=selection_round.pk).update(
                status=SelectionRound.Status.PUSHED, pushed_at=timezone.now(), push_error=""
            )
        selection_round.refresh_from_db()
        logger.info("pushed %s: %d tasks", selection_round, len(pairs))
        return selection_round
    finally:
        release(project=project, kind="push")


def rounds_push_pending(*, older_than_seconds: int = 120) -> list[int]:
    """Re-sends the push of every draft round older than a couple of minutes: what an
    outage longer than the task's retries left behind. Run periodically by beat."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        SelectionRound.objects.filter(
            status=SelectionRound.Status.DRAFT, created_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for round_id in ids:
        jobs.enqueue(jobs.PUSH_ROUND, selection_round_id=round_id)
    return ids

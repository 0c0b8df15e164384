"""The one module in Loupe that talks to Label Studio (through label-studio-sdk 2.x).

Plain functions with explicit arguments: a client, ids, dataclasses and dicts in, ids and
dataclasses out. No Django here, so services, workers and tests can all call it. Any
request that cannot reach the server raises `LabelStudioUnavailable` (retry with backoff);
a request Label Studio refuses raises `LabelStudioError` with its status and body.
Behaviour was checked against Label Studio 1.23.2, see docs/label-studio.md.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from loupe.labeling.ls_payloads import (
    ITEM_ID_FIELD,
    ROUND_ID_FIELD,
    WEBHOOK_ACTIONS,
    AnnotationRecord,
    LabelStudioError,
    LabelStudioUnavailable,
    MalformedWebhook,
    PushNeighbour,
    PushPrediction,
    PushTask,
    WebhookEvent,
    annotation_record,
    choices_result,
    label_stream_url,
    labeling_config,
    local_file_url,
    parse_webhook,
    task_payload,
    task_url,
)

__all__ = [
    "AnnotationRecord",
    "LabelStudioError",
    "LabelStudioUnavailable",
    "MalformedWebhook",
    "PushNeighbour",
    "PushPrediction",
    "PushTask",
    "WebhookEvent",
    "annotations_since",
    "choices_result",
    "client_for",
    "label_stream_url",
    "LabelStudioAccount",
    "labeling_config",
    "local_file_url",
    "local_storage_ensure",
    "open_predictions_move",
    "parse_webhook",
    "project_ensure",
    "task_url",
    "tasks_push",
    "user_ensure",
    "users_list",
    "webhook_ensure",
]

# Label Studio's Data Manager filters take datetimes in exactly this format.
_DM_DATETIME = "%Y-%m-%dT%H:%M:%S.%fZ"
_UNAVAILABLE_STATUS = {502, 503, 504}
PUSH_BATCH_SIZE = 500
LIST_PAGE_SIZE = 500


@contextlib.contextmanager
def _translate_errors(what: str) -> Iterator[None]:
    """Turn SDK/transport errors into Loupe's two error types."""
    try:
        yield
    except httpx.TransportError as exc:  # refused, reset, DNS, timeouts
        raise LabelStudioUnavailable(f"{what}: Label Studio unreachable ({exc})") from exc
    except ApiError as exc:
        error = (
            LabelStudioUnavailable if exc.status_code in _UNAVAILABLE_STATUS else LabelStudioError
        )
        raise error(
            f"{what}: Label Studio answered {exc.status_code}: {exc.body}",
            status_code=exc.status_code,
            body=exc.body,
        ) from exc


def client_for(url: str, token: str, *, timeout: float = 10.0, max_retries: int = 2) -> LabelStudio:
    """A client for the server at `url`, authenticated with a user's API token.

    The SDK retries refused connections and 5xx answers `max_retries` times with backoff
    before the error reaches the caller.
    """
    return LabelStudio(
        base_url=url.rstrip("/"), api_key=token, timeout=timeout, max_retries=max_retries
    )


def project_ensure(
    client: LabelStudio,
    *,
    title: str,
    label_config: str,
    expert_instruction: str = "",
    description: str = "",
    overlap: int = 1,
    ls_project_id: int | None = None,
) -> int:
    """Create the Label Studio project, or bring a linked one up to date; returns its id.

    With `ls_project_id`, the project's title, config (e.g. after class changes),
    guidelines and overlap are updated where they differ. The guidelines never pop up
    (`show_instruction` off): experts open them from the labeling view. A linked id that no
    longer exists in Label Studio gets a new project, whose id the caller must store. Tasks
    are served in import order (sequential sampling), so the most informative pushed first
    come first.
    """
    wanted = {
        "title": title,
        "label_config": label_config,
        "expert_instruction": expert_instruction,
        # The guidelines are behind the labeling view's "Instructions" button and in the
        # config's panel; "show before labeling" would pop them up whenever labeling starts.
        "show_instruction": False,
        "description": description,
        "maximum_annotations": overlap,
    }
    if ls_project_id is not None:
        with _translate_errors(f"read project {ls_project_id}"):
            try:
                current = client.projects.get(ls_project_id)
            except ApiError as exc:
                if exc.status_code != 404:
                    raise
                current = None
        if current is not None:
            changed = {k: v for k, v in wanted.items() if getattr(current, k, None) != v}
            if changed:
                with _translate_errors(f"update project {ls_project_id}"):
                    client.projects.update(ls_project_id, **changed)
            return ls_project_id
    with _translate_errors("create project"):
        project = client.projects.create(
            **wanted, show_skip_button=True, sampling="Sequential sampling"
        )
    return int(project.id)


def local_storage_ensure(client: LabelStudio, *, project_id: int, path: str) -> int:
    """Connect a local-files storage so Label Studio serves Loupe's media to the project.

    `path` is an absolute folder strictly inside Label Studio's
    LOCAL_FILES_DOCUMENT_ROOT (not the root itself); it must exist. The storage is only
    a permission for `/data/local-files/?d=...` URLs: it is never synced, so it never
    creates tasks of its own.
    """
    path = path.rstrip("/")
    with _translate_errors(f"list storages of project {project_id}"):
        for storage in client.import_storage.local.list(project=project_id):
            if (storage.path or "").rstrip("/") == path:
                return int(storage.id)
    with _translate_errors(f"create local storage {path}"):
        storage = client.import_storage.local.create(
            project=project_id, path=path, title="Loupe media", use_blob_urls=False
        )
    return int(storage.id)


def _query(*items: dict) -> str:
    return json.dumps({"filters": {"conjunction": "and", "items": list(items)}})


def _existing_tasks(client: LabelStudio, project_id: int, round_id: int) -> dict[int, int]:
    """Loupe item id -> Label Studio task id for one round already in the project."""
    flt = {
        "filter": f"filter:tasks:data.{ROUND_ID_FIELD}",
        "operator": "equal",
        "type": "Number",
        "value": round_id,
    }
    found: dict[int, int] = {}
    # Only id and data: four times faster than the default task serializer.
    pager = client.tasks.list(
        project=project_id,
        query=_query(flt),
        fields="task_only",
        include="id,data",
        page_size=LIST_PAGE_SIZE,
    )
    for task in pager:
        item_id = (task.data or {}).get(ITEM_ID_FIELD)
        if item_id is not None:
            found.setdefault(int(item_id), int(task.id))
    return found


def tasks_push(
    client: LabelStudio,
    project_id: int,
    tasks: Sequence[PushTask],
    *,
    batch_size: int = PUSH_BATCH_SIZE,
) -> dict[int, int]:
    """Create tasks (with their predictions) in bulk; returns Loupe item id -> task id.

    Idempotent per (item, round): tasks already in the project for the same round are
    found by the ids Loupe stores in task data and not created again, so a push cut short
    by an outage can simply be repeated. Tasks are created in the given order, which is
    the order experts get them. When the predictions come from a model version other than
    the project's current one, the project switches to it, because Label Studio only shows
    the current version's predictions as pre-annotations; the predictions of tasks nobody
    answered yet move to that version with it, so they stay visible.
    """
    mapping: dict[int, int] = {}
    with _translate_errors(f"list tasks of project {project_id}"):
        for round_id in sorted({t.round_id for t in tasks}):
            mapping.update(_existing_tasks(client, project_id, round_id))
    seen: set[int] = set()
    todo = []
    for task in tasks:
        if task.item_id not in mapping and task.item_id not in seen:
            seen.add(task.item_id)
            todo.append(task)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        with _translate_errors(f"import {len(batch)} tasks into project {project_id}"):
            response = client.projects.import_tasks(
                project_id, request=[task_payload(t) for t in batch], return_task_ids=True
            )
        task_ids = list(response.task_ids or [])
        if len(task_ids) != len(batch):
            raise LabelStudioError(
                f"import into project {project_id} returned {len(task_ids)} task ids"
                f" for {len(batch)} tasks"
            )
        mapping.update({t.item_id: int(i) for t, i in zip(batch, task_ids, strict=True)})
    versions = [t.prediction.model_version for t in todo if t.prediction is not None]
    if versions:
        _model_version_ensure(client, project_id, versions[-1])
    return {t.item_id: mapping[t.item_id] for t in tasks}


def _model_version_ensure(client: LabelStudio, project_id: int, model_version: str) -> None:
    with _translate_errors(f"set model version of project {project_id}"):
        if client.projects.get(project_id).model_version == model_version:
            return
        client.projects.update(project_id, model_version=model_version)
    open_predictions_move(client, project_id, model_version)


def open_predictions_move(client: LabelStudio, project_id: int, model_version: str) -> int:
    """Gives the predictions of unanswered tasks `model_version`; returns how many moved.

    Label Studio's labeling stream ("Label" / next task) pre-annotates a task only with
    predictions whose model version is the project's selected one; without this, the open
    tasks of earlier versions would show no pre-annotation after a switch.
    """
    unanswered = {
        "filter": "filter:tasks:total_annotations",
        "operator": "equal",
        "type": "Number",
        "value": 0,
    }
    with _translate_errors(f"list open tasks of project {project_id}"):
        pager = client.tasks.list(
            project=project_id,
            query=_query(unanswered),
            fields="task_only",
            include="id",
            page_size=LIST_PAGE_SIZE,
        )
        open_tasks = {int(task.id) for task in pager}
    if not open_tasks:
        return 0
    moved = 0
    with _translate_errors(f"move predictions of project {project_id} to {model_version}"):
        for prediction in client.predictions.list(project=project_id):
            if prediction.task in open_tasks and prediction.model_version != model_version:
                client.predictions.update(prediction.id, model_version=model_version)
                moved += 1
    return moved


def user_emails(client: LabelStudio) -> dict[int, str]:
    with _translate_errors("list users"):
        return {int(u.id): u.email for u in client.users.list() if u.email}


def users_list(client: LabelStudio) -> dict[int, str]:
    """Every user of the organization: Label Studio user id -> email (lower case)."""
    return {user_id: email.lower() for user_id, email in user_emails(client).items()}


@dataclass(frozen=True)
class LabelStudioAccount:
    """A person's Label Studio user. `password` is set only when this call created the user
    (Loupe chose it); an existing user keeps the password they have."""

    id: int
    email: str
    password: str | None = None


def user_ensure(
    client: LabelStudio,
    *,
    base_url: str,
    email: str,
    known: dict[int, str] | None = None,
    timeout: float = 10.0,
) -> LabelStudioAccount:
    """The Label Studio user with `email`, created with a generated password when missing.

    The community edition's users API ignores passwords, so a user made through it can never
    sign in. This one is created the way a person would: through the organization's invite
    link (the sign-up form at `/user/signup/?token=...`), which joins them to the
    organization Loupe's token belongs to. `known` (id -> lower-case email, from
    `users_list`) saves a listing. A user created meanwhile by someone else is found.
    """
    email = email.strip().lower()
    users = known if known is not None else users_list(client)
    found = _user_id_by_email(users, email)
    if found is not None:
        return LabelStudioAccount(id=found, email=email)
    with _translate_errors("read the invite link"):
        invite = client.organizations.invites.get_invite_link()
    password = secrets.token_urlsafe(12)
    refusal = _sign_up(
        base_url, token=invite.token or "", email=email, password=password, timeout=timeout
    )
    users = users_list(client)
    found = _user_id_by_email(users, email)
    if found is None:
        raise LabelStudioError(f"sign-up of {email} refused: {refusal}", body=refusal)
    return LabelStudioAccount(id=found, email=email, password=None if refusal else password)


def _user_id_by_email(users: dict[int, str], email: str) -> int | None:
    return next((user_id for user_id, known in users.items() if known == email), None)


def _sign_up(base_url: str, *, token: str, email: str, password: str, timeout: float) -> str:
    """Posts the sign-up form; returns "" on success, else what the server objected."""
    url = base_url.rstrip("/") + "/user/signup/"
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as browser:
            form = browser.get(url, params={"token": token})
            csrf = browser.cookies.get("csrftoken")
            if form.status_code != 200 or not csrf:
                return f"sign-up page answered {form.status_code}"
            answer = browser.post(
                url,
                params={"token": token},
                data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
                headers={"Referer": url},
            )
    except httpx.TransportError as exc:
        raise LabelStudioUnavailable(f"sign up {email}: Label Studio unreachable ({exc})") from exc
    if answer.status_code in _UNAVAILABLE_STATUS:
        raise LabelStudioUnavailable(f"sign up {email}: Label Studio answered {answer.status_code}")
    # Success redirects into the app; a refusal renders the form again with its errors.
    if answer.status_code == 302:
        return ""
    return f"sign-up form answered {answer.status_code}"


def annotations_since(
    client: LabelStudio, project_id: int, updated_after: datetime | None = None
) -> Iterator[AnnotationRecord]:
    """Every annotation of the project changed at or after `updated_after` (all when None).

    For reconciliation: Label Studio bumps a task's `updated_at` whenever one of its
    annotations is saved or deleted, so the tasks are filtered on the server and their
    annotations on `updated_at` here. Deletions do not show up; a caller that needs them
    lists everything (`updated_after=None`) and compares ids. `updated_after` must be
    timezone-aware.
    """
    emails = user_emails(client)
    kwargs: dict = {"project": project_id, "fields": "all", "page_size": LIST_PAGE_SIZE}
    if updated_after is not None:
        if updated_after.tzinfo is None:
            raise ValueError("updated_after must be timezone-aware")
        # A second of slack absorbs clock rounding; re-applying an annotation is harmless.
        since = (updated_after - timedelta(seconds=1)).astimezone(UTC)
        flt = {
            "filter": "filter:tasks:updated_at",
            "operator": "greater_or_equal",
            "type": "Datetime",
            "value": since.strftime(_DM_DATETIME),
        }
        kwargs["query"] = _query(flt)
    with _translate_errors(f"list annotations of project {project_id}"):
        for task in client.tasks.list(**kwargs):
            task_dict = {"id": task.id, "data": task.data or {}}
            for annotation in task.annotations or []:
                raw = (
                    annotation
                    if isinstance(annotation, dict)
                    else annotation.model_dump(mode="json")
                )
                record = annotation_record(raw, task_dict, emails)
                if _changed_since(record, updated_after):
                    yield record


def task_ids(client: LabelStudio, project_id: int) -> set[int]:
    """Ids of every task in the project: a full reconciliation compares them with the tasks
    Loupe pushed to find tasks deleted while their webhook was lost."""
    with _translate_errors(f"list tasks of project {project_id}"):
        pager = client.tasks.list(
            project=project_id, fields="task_only", include="id", page_size=LIST_PAGE_SIZE
        )
        return {int(task.id) for task in pager}


def _changed_since(record: AnnotationRecord, updated_after: datetime | None) -> bool:
    if updated_after is None or record.updated_at is None:
        return True
    return record.updated_at >= updated_after


def webhook_ensure(
    client: LabelStudio, *, project_id: int, url: str, secret_header: tuple[str, str]
) -> int:
    """One active webhook of the project to `url`, sending Loupe's actions with the secret.

    `secret_header` is (header name, secret). An existing webhook to the same URL is
    updated rather than duplicated; extra duplicates are removed so no event arrives twice.
    Label Studio posts each event once, with a 1 s timeout and no retry.
    """
    name, secret = secret_header
    wanted = {
        "url": url,
        "headers": {name: secret},
        "actions": list(WEBHOOK_ACTIONS),
        "send_payload": True,
        "send_for_all_actions": False,
        "is_active": True,
    }
    with _translate_errors(f"list webhooks of project {project_id}"):
        same_url = [w for w in client.webhooks.list(project=str(project_id)) if w.url == url]
    if not same_url:
        with _translate_errors(f"create webhook for project {project_id}"):
            return int(client.webhooks.create(project=project_id, **wanted).id)
    keep, *duplicates = same_url
    with _translate_errors(f"update webhook {keep.id}"):
        if (
            keep.headers != wanted["headers"]
            or sorted(keep.actions or []) != sorted(WEBHOOK_ACTIONS)
            or not keep.is_active
            or not keep.send_payload
            or keep.send_for_all_actions
        ):
            client.webhooks.update(keep.id, **wanted)
        for duplicate in duplicates:
            client.webhooks.delete(duplicate.id)
    return int(keep.id)

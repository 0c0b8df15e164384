"""Each Loupe user who labels has their own Label Studio user, so that every answer names
the person who gave it (agreement, throughput and overlap count people, not one shared
account).

Loupe creates the Label Studio user with a password it generates (the community edition
sets passwords only through its sign-up form, see `adapter.user_ensure`), or links the user
who already has the email, and keeps the Label Studio id beside the Loupe user
(`LabelStudioUser`). Events name annotators by that id (`people_by_ls_id`).
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from loupe.accounts.selectors import PERMISSIONS
from loupe.labeling import adapter
from loupe.labeling.models import LabelStudioUser

logger = logging.getLogger(__name__)

# Users without an email sign in to Label Studio as <username>@ this domain.
PLACEHOLDER_EMAIL_DOMAIN = "users.loupe.local"


def label_studio_email(*, user: AbstractUser) -> str:
    """The email `user` signs in to Label Studio with: theirs; else the username when it is
    an email; else one made from the username."""
    if user.email.strip():
        return user.email.strip().lower()
    try:
        validate_email(user.username)
        return user.username.lower()
    except ValidationError:
        pass
    local = re.sub(r"[^a-z0-9._+-]+", "-", user.username.lower()).strip(".-")
    return f"{local or f'user{user.pk}'}@{PLACEHOLDER_EMAIL_DOMAIN}"


def project_labelers(*, project) -> list[AbstractUser]:
    """Members of `project` whose role may label, in the order they joined."""
    return list(
        get_user_model()
        .objects.filter(memberships__project=project, memberships__role__in=PERMISSIONS["label"])
        .order_by("memberships__created_at", "pk")
    )


def label_studio_user_ensure(
    *, user: AbstractUser, client, known: dict[int, str] | None = None
) -> LabelStudioUser | None:
    """Creates or links `user`'s Label Studio user; returns the link (None when another Loupe
    user already holds that Label Studio user, which is logged).

    A link whose Label Studio user is gone (a fresh Label Studio) or whose email changed is
    made again. `known` (Label Studio id -> email, from `adapter.users_list`) saves a
    listing per user and is kept up to date here.
    """
    known = adapter.users_list(client) if known is None else known
    email = label_studio_email(user=user)
    link = LabelStudioUser.objects.filter(user=user).first()
    if link is not None and link.email == email and known.get(link.ls_user_id) == email:
        return link
    account = adapter.user_ensure(
        client,
        base_url=settings.LABEL_STUDIO_URL,
        email=email,
        known=known,
        timeout=settings.LABEL_STUDIO_TIMEOUT,
    )
    known[account.id] = account.email
    holder = LabelStudioUser.objects.filter(ls_user_id=account.id).exclude(user=user).first()
    if holder is not None:
        if holder.email == account.email:
            logger.warning(
                "Label Studio user %s (%s) stays linked to %s, not %s",
                account.id,
                account.email,
                holder.user,
                user,
            )
            return None
        holder.delete()  # a link from before Label Studio's users were made anew
    if account.password is not None:
        password = account.password
    elif link is not None and link.ls_user_id == account.id:
        password = link.password
    else:
        password = ""
    link, _ = LabelStudioUser.objects.update_or_create(
        user=user,
        defaults={"ls_user_id": account.id, "email": account.email, "password": password},
    )
    logger.info("%s labels in Label Studio as user %s (%s)", user, account.id, account.email)
    return link


def project_label_studio_users_ensure(*, project, client) -> list[LabelStudioUser]:
    """Every member of `project` who may label gets their own Label Studio user.

    A refusal for one person is logged and the others go on; an unreachable server raises
    `LabelStudioUnavailable`.
    """
    people = project_labelers(project=project)
    if not people:
        return []
    known = adapter.users_list(client)
    links = []
    for user in people:
        try:
            link = label_studio_user_ensure(user=user, client=client, known=known)
        except adapter.LabelStudioUnavailable:
            raise
        except adapter.LabelStudioError as exc:
            logger.warning("no Label Studio user for %s: %s", user, exc)
            continue
        if link is not None:
            links.append(link)
    return links


def people_by_ls_id(ls_user_ids) -> dict[int, tuple[int, str]]:
    """Label Studio user id -> (Loupe user id, username), for the ids Loupe linked."""
    rows = LabelStudioUser.objects.filter(ls_user_id__in=set(ls_user_ids)).values_list(
        "ls_user_id", "user_id", "user__username"
    )
    return {int(ls_id): (user_id, username) for ls_id, user_id, username in rows}


def label_studio_login(*, user: AbstractUser) -> dict | None:
    """How `user` signs in to Label Studio (url, email, the password Loupe set or None), or
    None before Loupe made their Label Studio user."""
    link = LabelStudioUser.objects.filter(user=user).first()
    if link is None:
        return None
    return {
        "url": settings.LABEL_STUDIO_PUBLIC_URL or settings.LABEL_STUDIO_URL,
        "email": link.email,
        "password": link.password or None,
        "ls_user_id": link.ls_user_id,
    }

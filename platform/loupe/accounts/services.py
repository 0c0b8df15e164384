"""Writes for users, roles and project membership."""

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from loupe.accounts.models import Membership, Profile, Role
from loupe.accounts.selectors import role_can, user_account_role
from loupe.errors import ApplicationError, NotFoundError, PermissionDeniedError

User = get_user_model()

# Account-wide roles that may create users and list them.
USER_ADMIN_ROLES = {Role.ADMIN}


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None = None,
    email: str = "",
    role: str = Role.EXPERT,
    is_superuser: bool = False,
) -> AbstractUser:
    """Creates a user with an account-wide role (admins and engineers may create projects)."""
    if role not in Role.values:
        raise ApplicationError(f"Unknown role '{role}'.", extra={"roles": Role.values})
    if User.objects.filter(username=username).exists():
        raise ApplicationError(f"A user named '{username}' already exists.", code="conflict")
    if is_superuser:
        user = User.objects.create_superuser(username=username, email=email, password=password)
    else:
        user = User.objects.create_user(username=username, email=email, password=password)
    Profile.objects.create(user=user, role=Role.ADMIN if is_superuser else role)
    return user


@dataclass(frozen=True)
class Registration:
    """A user an admin created; `generated_password` is set (and shown once) when the admin
    gave none."""

    user: AbstractUser
    generated_password: str | None


def user_register(
    *,
    by: AbstractUser,
    username: str,
    email: str = "",
    password: str | None = None,
    role: str = Role.EXPERT,
) -> Registration:
    """An admin creates a user with an account-wide role.

    Only superusers and account-wide admins may. Without a password one is generated and
    returned once (Loupe keeps only its hash). Emails are unique, case-insensitively: a
    user's email is also their Label Studio login.
    """
    if user_account_role(user=by) not in USER_ADMIN_ROLES:
        raise PermissionDeniedError("Only admins may create users.")
    email = email.strip()
    if email and User.objects.filter(email__iexact=email).exists():
        raise ApplicationError(
            f"A user with the email '{email}' already exists.",
            code="conflict",
            extra={"email": email},
        )
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    else:
        try:
            validate_password(password, user=User(username=username, email=email))
        except ValidationError as exc:
            raise ApplicationError(
                "The password is too weak.", extra={"password": exc.messages}
            ) from exc
    user = user_create(username=username, email=email, password=password, role=role)
    return Registration(user=user, generated_password=generated)


def user_token(*, user: AbstractUser) -> str:
    """Returns the user's API token, creating it on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def membership_set(*, project, user: AbstractUser, role: str) -> Membership:
    """Gives `user` the `role` in `project` (replacing an earlier role).

    A member who may label gets their own Label Studio user once the project is linked
    (the project's sync creates it in a worker)."""
    if role not in Role.values:
        raise ApplicationError(f"Unknown role '{role}'.", extra={"roles": Role.values})
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    if role_can(role, "label"):
        # Imported here: labeling builds on accounts, not the other way round.
        from loupe.labeling.sync import project_changed

        project_changed(project=project)
    return membership


@transaction.atomic
def membership_remove(*, project, user: AbstractUser) -> None:
    """Takes `user` out of `project`. The last admin member cannot be removed (nobody could
    manage the members after them, superusers aside)."""
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        raise NotFoundError(f"'{user.username}' is not a member of this project.")
    if (
        membership.role == Role.ADMIN
        and not Membership.objects.filter(project=project, role=Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    ):
        raise ApplicationError(
            f"'{user.username}' is the project's last admin; make someone else admin first.",
            code="conflict",
        )
    membership.delete()

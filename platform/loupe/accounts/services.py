"""Writes for users, roles and project membership."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from rest_framework.authtoken.models import Token

from loupe.accounts.models import Membership, Profile, Role
from loupe.errors import ApplicationError

User = get_user_model()


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


def user_token(*, user: AbstractUser) -> str:
    """Returns the user's API token, creating it on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def membership_set(*, project, user: AbstractUser, role: str) -> Membership:
    """Gives `user` the `role` in `project` (replacing an earlier role)."""
    if role not in Role.values:
        raise ApplicationError(f"Unknown role '{role}'.", extra={"roles": Role.values})
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def membership_remove(*, project, user: AbstractUser) -> None:
    Membership.objects.filter(project=project, user=user).delete()

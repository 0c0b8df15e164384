"""Reads for users and roles, and the one place that answers "may this user do that here?"."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db.models import Case, F, QuerySet, Value, When

from loupe.accounts.models import Membership, Profile, Role

# What each project role may do. The README's permission matrix is generated from this table.
PERMISSIONS: dict[str, set[str]] = {
    "view": {Role.ADMIN, Role.ENGINEER, Role.EXPERT, Role.MANAGER},
    "label": {Role.ADMIN, Role.ENGINEER, Role.EXPERT},
    "import": {Role.ADMIN, Role.ENGINEER},
    "edit_project": {Role.ADMIN, Role.ENGINEER},
    "run_jobs": {Role.ADMIN, Role.ENGINEER},
    # The labeled data set leaves Loupe: the people who build and track it, not every labeler.
    "export": {Role.ADMIN, Role.ENGINEER, Role.MANAGER},
    "manage_members": {Role.ADMIN},
    "delete_project": {Role.ADMIN},
}
CREATE_PROJECT_ROLES = {Role.ADMIN, Role.ENGINEER}


def user_account_role(*, user: AbstractUser) -> str | None:
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    profile = Profile.objects.filter(user=user).only("role").first()
    return profile.role if profile else None


def user_project_role(*, user: AbstractUser, project) -> str | None:
    """The user's role in the project, or None when they are not a member.
    Superusers act as admins of every project."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    membership = Membership.objects.filter(user=user, project=project).only("role").first()
    return membership.role if membership else None


def role_can(role: str | None, action: str) -> bool:
    """What a project role (None: not a member) may do, by PERMISSIONS."""
    return role is not None and role in PERMISSIONS[action]


def user_can(*, user: AbstractUser, project, action: str) -> bool:
    return role_can(user_project_role(user=user, project=project), action)


def user_can_create_projects(*, user: AbstractUser) -> bool:
    return user_account_role(user=user) in CREATE_PROJECT_ROLES


def user_list() -> QuerySet:
    """Every user with their account-wide role (`account_role`; superusers: admin)."""
    return (
        get_user_model()
        .objects.annotate(
            account_role=Case(
                When(is_superuser=True, then=Value(Role.ADMIN.value)),
                default=F("loupe_profile__role"),
            )
        )
        .order_by("-id")
    )

"""Helpers the API views use to check project roles."""

from loupe.accounts.selectors import user_can
from loupe.errors import PermissionDeniedError

ACTION_MESSAGES = {
    "import": "Only admins and ML engineers of this project may import data.",
    "edit_project": "Only admins and ML engineers of this project may change it.",
    "run_jobs": "Only admins and ML engineers of this project may start jobs.",
    "manage_members": "Only admins of this project may manage its members.",
    "export": "Only admins, ML engineers and managers of this project may export its ground truth.",
    "label": "Only experts, engineers and admins of this project may label.",
}


def require(*, user, project, action: str) -> None:
    if not user_can(user=user, project=project, action=action):
        raise PermissionDeniedError(ACTION_MESSAGES.get(action, "You may not do this."))

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    ENGINEER = "engineer", "ML engineer"
    EXPERT = "expert", "Domain expert"
    MANAGER = "manager", "Manager"


class Profile(models.Model):
    """A user's account-wide role: who may create projects. Rights inside a project come
    from the Membership."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="loupe_profile"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EXPERT)

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class Membership(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.project}"

from django.conf import settings
from django.db import models

from loupe.runs import RunStatus


class Split(models.TextChoices):
    POOL = "pool", "Pool"
    TRAIN = "train", "Train"
    HOLDOUT = "holdout", "Holdout"


class ItemState(models.TextChoices):
    UNLABELED = "unlabeled", "Unlabeled"
    QUEUED = "queued", "Queued for labeling"
    IN_ANNOTATION = "in_annotation", "In annotation"
    LABELED = "labeled", "Labeled"
    SKIPPED = "skipped", "Skipped"


class Item(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="items")
    # Content-addressed: items/<sha[:2]>/<sha>.<ext> in media storage.
    file = models.FileField(max_length=255)
    # Storage names of the files an item refers to beyond `file`, for task types whose item
    # is more than one image (the second face of a pair); None for one-image items (bulk
    # imports write rows without it, so no default of Django's applies).
    extra_files = models.JSONField(null=True, blank=True)
    original_name = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    image_format = models.CharField(max_length=16, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=100, blank=True, db_index=True)
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.POOL)
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.UNLABELED)
    import_job = models.ForeignKey(
        "datasets.ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="unique_content_in_project")
        ]
        indexes = [
            models.Index(fields=["project", "state"]),
            models.Index(fields=["project", "split"]),
            models.Index(fields=["project", "source"]),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} ({self.original_name or self.sha256[:12]})"


class ItemStateCount(models.Model):
    """Items per project and state, kept exact by triggers on the items table
    (loupe.datasets.counters): the overview's totals without counting a million rows.
    No foreign-key constraint, so the triggers may write while a project is being deleted."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    state = models.CharField(max_length=16)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "state"], name="item_state_count_key")
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.state}: {self.n}"


class ImportKind(models.TextChoices):
    FOLDER = "folder", "Server-side folder"
    ZIP = "zip", "Zip archive"
    MANIFEST = "manifest", "CSV or JSONL manifest"


# An import follows the lifecycle of every background run (loupe.runs).
JobStatus = RunStatus


class ImportJob(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="import_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    source_path = models.CharField(max_length=1000)
    source_tag = models.CharField(max_length=100, blank=True)
    # Labeled items whose hash falls in this fraction go to the holdout split.
    holdout_fraction = models.FloatField(default=0.0)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total = models.PositiveIntegerField(null=True, blank=True)
    processed = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    labeled = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.source_path} ({self.status})"

    @property
    def progress(self) -> float:
        if self.status == JobStatus.SUCCEEDED:
            return 1.0
        if not self.total:
            return 0.0
        return min(1.0, self.processed / self.total)


class ImportRejection(models.Model):
    """One entry of an import that was not imported, and why."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejections")
    path = models.CharField(max_length=1000)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# The columns an import writes per item, in the order of its row tuples (`loupe.bulk`).
ITEM_IMPORT_COLUMNS = (
    "project",
    "file",
    "original_name",
    "sha256",
    "size_bytes",
    "width",
    "height",
    "image_format",
    "metadata",
    "source",
    "split",
    "state",
    "import_job",
    "created_at",
    "updated_at",
)

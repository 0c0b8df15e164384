from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from loupe.datasets.models import Split


class Decision(models.TextChoices):
    IMPORTED = "imported", "Imported with the data"
    SINGLE = "single", "One annotator"
    MAJORITY = "majority", "Majority vote"
    REVIEW = "review", "Decided in review"


class GroundTruth(models.Model):
    """The class Loupe trains on for one item, and how it was decided."""

    item = models.OneToOneField(
        "datasets.Item", on_delete=models.CASCADE, related_name="ground_truth"
    )
    # The item's project, copied so per-project statistics read this table alone (no join
    # to a million items). Always equal to item.project_id; save() fills it when missing.
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # None for task types whose ground truth is only its `answer` (the boxes of a page);
    # the counters count those under `counters.NO_CLASS`.
    label_class = models.ForeignKey(
        "projects.LabelClass",
        on_delete=models.PROTECT,
        related_name="ground_truths",
        null=True,
        blank=True,
    )
    decided_by = models.CharField(max_length=16, choices=Decision.choices)
    num_annotators = models.PositiveIntegerField(default=0)
    # Share of annotators who chose the winning class (1.0 when unanimous or imported).
    agreement = models.FloatField(null=True, blank=True)
    needs_review = models.BooleanField(default=False)
    # The decided answer of task types whose ground truth is more than one class (boxes
    # with their classes), in the task type's own shape; None for classification.
    answer = models.JSONField(null=True, blank=True)
    # Whether the item is in the holdout, copied so the train/holdout counts need no join.
    # An item's holdout membership is decided at import and never changes afterwards.
    in_holdout = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["label_class"]),
            # Per-class counts of a project, answered from the index alone.
            models.Index(
                fields=["project", "label_class", "needs_review", "in_holdout"],
                name="gt_project_class_split_idx",
            ),
            # Labels per day and the recent label rate (PostgreSQL reads them index-only).
            models.Index(
                fields=["project", "created_at"],
                include=["label_class", "needs_review", "decided_by"],
                name="gt_project_created_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.label_class}"

    def save(self, *args, **kwargs):
        _fill_project(self)
        if self.item_id is not None:
            self.in_holdout = self.item.split == Split.HOLDOUT
        super().save(*args, **kwargs)


class Annotation(models.Model):
    """One annotator's answer for one item, as Label Studio recorded it."""

    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="annotations")
    # The item's project, copied for per-project statistics (see GroundTruth.project).
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    label_class = models.ForeignKey(
        "projects.LabelClass",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="annotations",
    )
    # Who answered, as statistics name them: the Loupe username when Label Studio's user is
    # one Loupe made or linked (`user`), else the Label Studio email.
    annotator = models.CharField(max_length=254, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="annotations",
    )
    result = models.JSONField(default=list, blank=True)
    # The answer as the project's task type reads it from `result`, for task types whose
    # answer is more than one class (boxes); None for classification.
    answer = models.JSONField(null=True, blank=True)
    lead_time_seconds = models.FloatField(null=True, blank=True)
    was_cancelled = models.BooleanField(default=False)
    ls_annotation_id = models.BigIntegerField(unique=True, null=True, blank=True)
    ls_task_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    ls_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Items of a project with two or more votes (agreement), read in item order.
            models.Index(
                fields=["project", "item"],
                include=["was_cancelled", "label_class"],
                name="annotation_project_item_idx",
            ),
            # An annotator's first and last answer (throughput): one probe each.
            models.Index(
                F("project"),
                F("annotator"),
                Coalesce("ls_updated_at", "created_at"),
                condition=Q(was_cancelled=False),
                name="annotation_answered_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"annotation {self.ls_annotation_id} on item {self.item_id}"

    def save(self, *args, **kwargs):
        _fill_project(self)
        super().save(*args, **kwargs)


def _unconstrained(model: str) -> models.ForeignKey:
    # Rows written by database triggers carry no foreign-key constraint: a trigger may still
    # write while the project or item it points to is being deleted.
    return models.ForeignKey(
        model, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )


# The class the counters count ground truth without a class under (never a class's id).
NO_CLASS = 0


def counted_class(class_id: int) -> int | None:
    """A counter row's class id as ground truth has it: None for NO_CLASS."""
    return None if class_id == NO_CLASS else class_id


class GroundTruthCount(models.Model):
    """Ground truth per project, class, review flag and holdout flag, kept exact by triggers
    on the ground-truth table (loupe.labeling.counters): per-class totals without a scan."""

    project = _unconstrained("projects.Project")
    label_class = _unconstrained("projects.LabelClass")
    needs_review = models.BooleanField()
    in_holdout = models.BooleanField()
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "label_class", "needs_review", "in_holdout"],
                name="ground_truth_count_key",
            )
        ]

    def __str__(self) -> str:
        return f"class {self.label_class_id}: {self.n}"


class AnnotationDayCount(models.Model):
    """Answers (skips excluded) per project, annotator and day of the answer (UTC), kept
    exact by triggers on the annotations table (loupe.labeling.counters)."""

    project = _unconstrained("projects.Project")
    annotator = models.CharField(max_length=254, blank=True)
    day = models.DateField()
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "annotator", "day"], name="annotation_day_count_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.annotator} on {self.day}: {self.n}"


class LabelDayCount(models.Model):
    """New ground-truth labels (imported ones and ties waiting for review excluded) per
    project, day and class, kept exact by triggers on the ground-truth table."""

    project = _unconstrained("projects.Project")
    day = models.DateField()
    label_class = _unconstrained("projects.LabelClass")
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "label_class"], name="label_day_count_key"
            )
        ]

    def __str__(self) -> str:
        return f"class {self.label_class_id} on {self.day}: {self.n}"


class AgreementVote(models.Model):
    """One annotator's vote on an item that two or more annotators voted on, with how many
    others voted (`pairs`) and how many of them chose the same class (`agree`). Rebuilt for
    an item by a trigger whenever its annotations change (loupe.labeling.counters)."""

    project = _unconstrained("projects.Project")
    item = _unconstrained("datasets.Item")
    annotator = models.CharField(max_length=280)
    label_class = _unconstrained("projects.LabelClass")
    pairs = models.PositiveIntegerField()
    agree = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="agreement_vote_key")
        ]
        indexes = [
            models.Index(
                fields=["project", "annotator", "label_class"],
                include=["pairs", "agree", "item"],
                name="agreement_vote_project_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.annotator} on item {self.item_id}: {self.agree}/{self.pairs}"


def _fill_project(row) -> None:
    """Copies the item's project onto a row saved one at a time without it. Bulk creation
    skips save(), so bulk creators set `project` themselves."""
    if row.project_id is None and row.item_id is not None:
        row.project_id = row.item.project_id


class LabelStudioSync(models.Model):
    """Where Loupe stands with a project's Label Studio twin: the reconciliation cursor, the
    classes last sent, and short-lived claims that keep two workers from pushing or
    reconciling the same project at once."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, related_name="label_studio_sync"
    )
    # Newest Label Studio `updated_at` seen by reconciliation; the next one starts there.
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # Last full listing (the only way to see deletions whose webhook was lost).
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    synced_classes = models.JSONField(default=list, blank=True)
    push_claimed_until = models.DateTimeField(null=True, blank=True)
    reconcile_claimed_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Label Studio sync of {self.project_id} (cursor {self.last_synced_at})"


class LabelStudioDeletion(models.Model):
    """A tombstone: an annotation or task Label Studio deleted. A late or replayed event
    about it (older than the deletion) is ignored, so events applied out of order end in the
    same state. Label Studio may reuse ids after a deletion; a newer object with the same id
    is therefore accepted."""

    class Kind(models.TextChoices):
        ANNOTATION = "annotation", "Annotation"
        TASK = "task", "Task"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    ls_id = models.BigIntegerField()
    deleted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "ls_id"], name="one_tombstone_per_ls_object")
        ]

    def __str__(self) -> str:
        return f"deleted {self.kind} {self.ls_id}"


class LabelStudioUser(models.Model):
    """A Loupe user's own user in Label Studio, so that each person's answers carry their
    name (agreement, throughput, overlap). Loupe creates it (with a password it generates)
    or links the existing one with the same email."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="label_studio_user"
    )
    ls_user_id = models.BigIntegerField(unique=True)
    email = models.CharField(max_length=254)
    # The password Loupe gave the Label Studio user it created, shown to that person only;
    # blank when Loupe linked a user that already existed.
    password = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} is Label Studio user {self.ls_user_id} ({self.email})"

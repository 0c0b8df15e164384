from django.db import models


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
    label_class = models.ForeignKey(
        "projects.LabelClass", on_delete=models.PROTECT, related_name="ground_truths"
    )
    decided_by = models.CharField(max_length=16, choices=Decision.choices)
    num_annotators = models.PositiveIntegerField(default=0)
    # Share of annotators who chose the winning class (1.0 when unanimous or imported).
    agreement = models.FloatField(null=True, blank=True)
    needs_review = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["label_class"])]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.label_class}"


class Annotation(models.Model):
    """One annotator's answer for one item, as Label Studio recorded it."""

    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="annotations")
    label_class = models.ForeignKey(
        "projects.LabelClass",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="annotations",
    )
    annotator = models.CharField(max_length=254, blank=True)
    result = models.JSONField(default=list, blank=True)
    lead_time_seconds = models.FloatField(null=True, blank=True)
    was_cancelled = models.BooleanField(default=False)
    ls_annotation_id = models.BigIntegerField(unique=True, null=True, blank=True)
    ls_task_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    ls_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"annotation {self.ls_annotation_id} on item {self.item_id}"

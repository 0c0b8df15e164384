"""Training runs, model versions, scoring runs, predictions, selection rounds and the loop
that chains them. Every run moves queued -> running -> succeeded | failed | cancelled, and a
worker only starts a run that is queued (or abandoned by a dead worker), so a redelivered task
does nothing twice."""

from django.conf import settings
from django.db import models
from django.db.models import Q

# The lifecycle every run shares; its names are read from here by most of the code.
from loupe.runs import ACTIVE_STATUSES, RunStatus  # noqa: F401


class Trigger(models.TextChoices):
    MANUAL = "manual", "Started by a person"
    LABELS = "labels", "Enough new labels"
    BATCH_DONE = "batch_done", "The experts finished the batch"
    SETUP = "setup", "The project has a pool and a Label Studio link"
    SCHEDULE = "schedule", "Schedule"


class RunBase(models.Model):
    """Status, progress and timing shared by every background run."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    phase = models.CharField(max_length=40, blank=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def eta_seconds(self) -> float | None:
        """Remaining time at the pace so far, or None before there is a pace."""
        if self.status != RunStatus.RUNNING or not self.started_at or self.progress <= 0.02:
            return None
        reference = self.heartbeat_at or self.started_at
        elapsed = (reference - self.started_at).total_seconds()
        return max(0.0, elapsed * (1 - self.progress) / self.progress)


class LearningLoop(RunBase):
    """One pass of train -> score -> select for a project; at most one active per project."""

    class Step(models.TextChoices):
        TRAIN = "train", "Training"
        SCORE = "score", "Scoring the pool"
        SELECT = "select", "Selecting the next batch"
        DONE = "done", "Done"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="loops")
    step = models.CharField(max_length=16, choices=Step.choices, default=Step.TRAIN)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    training_run = models.ForeignKey(
        "learning.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scoring_run = models.ForeignKey(
        "learning.ScoringRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    selection_round = models.ForeignKey(
        "learning.SelectionRound",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Timings of each step in seconds, for the loop-latency view.
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_loop_per_project",
            )
        ]

    def __str__(self) -> str:
        return f"loop {self.pk} of {self.project} ({self.status}, {self.step})"


class TrainingRun(RunBase):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="training_runs"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    config = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=64, blank=True)
    labels_used = models.PositiveIntegerField(default=0)
    holdout_size = models.PositiveIntegerField(default=0)
    class_weights = models.JSONField(default=list, blank=True)
    # [step, loss] pairs, thinned to at most a few hundred points.
    loss_curve = models.JSONField(default=list, blank=True)
    history = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"training run {self.pk} of {self.project} ({self.status})"


class ModelVersion(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="model_versions"
    )
    training_run = models.OneToOneField(
        TrainingRun, on_delete=models.CASCADE, related_name="model_version"
    )
    version = models.PositiveIntegerField()
    weights = models.FileField(max_length=255)
    # Embeddings of the items it trained on (an ml.artifacts file of ids and embeddings): the
    # diversity part of selection starts from what is already labeled.
    train_embeddings = models.FileField(max_length=255, blank=True)
    model_kind = models.CharField(max_length=32, default="small_cnn")
    image_size = models.PositiveIntegerField()
    class_names = models.JSONField(default=list)
    metrics = models.JSONField(default=dict, blank=True)
    baseline_metrics = models.JSONField(default=dict, blank=True)
    labels_used = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=64, blank=True)
    train_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="one_number_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.version}"


class ScoringRun(RunBase):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="scoring_runs"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="scoring_runs"
    )
    total_items = models.PositiveIntegerField(default=0)
    scored_items = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"scoring run {self.pk} ({self.status}, {self.chunks_done}/{self.chunks_total})"


class ScoringChunk(models.Model):
    """A shard of a scoring run: one task, one bulk write. Workers on several machines share a
    run by taking chunks."""

    scoring_run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    item_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    artifact = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["scoring_run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["scoring_run", "index"], name="one_chunk_per_index")
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of scoring run {self.scoring_run_id}"


class Prediction(models.Model):
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="predictions"
    )
    scoring_run = models.ForeignKey(
        ScoringRun, null=True, on_delete=models.SET_NULL, related_name="predictions"
    )
    predicted_class = models.ForeignKey(
        "projects.LabelClass", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    confidence = models.FloatField()
    # 1 - (p1 - p2): high when the two most likely classes are close.
    uncertainty = models.FloatField(db_index=True)
    probs = models.JSONField(default=list)
    # The predicted boxes of task types that predict boxes, by descending score:
    # [x, y, width, height, class index in the version's class_names, score] in pixels of
    # the image; None for the others.
    boxes = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "model_version"], name="one_score_per_version")
        ]
        indexes = [
            models.Index(fields=["model_version", "-uncertainty"]),
            # A version's predictions in item order with their class: the stop set and the
            # per-class counts of a scoring, read from the index alone on PostgreSQL.
            models.Index(
                fields=["model_version", "item"],
                include=["predicted_class"],
                name="prediction_version_item_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"prediction of item {self.item_id} by {self.model_version}"


class SelectionRound(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUSHED = "pushed", "Pushed to Label Studio"
        COMPLETE = "complete", "Complete"

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="selection_rounds"
    )
    number = models.PositiveIntegerField()
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    strategy = models.CharField(max_length=40)
    batch_size = models.PositiveIntegerField()
    control_fraction = models.FloatField(default=0.0)
    pool_size = models.PositiveIntegerField(default=0)
    # How a mix of strategies split the batch and why: {"note": ..., "shares": {arm: share},
    # "picks": {arm: n}, "relative_yield": {arm: x}, "class_counts": labels per class when
    # the batch was chosen}; empty for a single strategy's round.
    mix = models.JSONField(default=dict, blank=True)
    push_error = models.TextField(blank=True)
    push_attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="one_round_per_number")
        ]

    def __str__(self) -> str:
        return f"round {self.number} of {self.project}"


class SelectionItem(models.Model):
    """One picked item and why it was picked."""

    selection_round = models.ForeignKey(
        SelectionRound, on_delete=models.CASCADE, related_name="items"
    )
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="selections")
    rank = models.PositiveIntegerField()
    score = models.FloatField(default=0.0)
    strategy = models.CharField(max_length=40)
    is_control = models.BooleanField(default=False)
    predicted_class = models.ForeignKey(
        "projects.LabelClass", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confidence = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    ls_task_id = models.BigIntegerField(null=True, blank=True)
    # What the model looked at: the image with a Grad-CAM heat map of the predicted class
    # laid over it (a PNG in media storage); empty for a cold start or when it failed.
    saliency = models.FileField(max_length=255, blank=True)
    # The labeled items nearest to this one in the version's embedding, nearest first:
    # [{"item_id": ..., "label": class name, "distance": cosine distance}].
    neighbours = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["selection_round", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["selection_round", "item"], name="one_pick_per_item_and_round"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.rank} of {self.selection_round}: item {self.item_id}"

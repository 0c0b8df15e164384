from django.conf import settings
from django.db import models


class TaskType(models.TextChoices):
    # The kinds of work a project may name. A project is created only with one registered
    # in `loupe.tasktypes` (single-label classification, pair verification): everything
    # that differs by task type (label config, answers, ground truth, training,
    # predictions) asks that registry by this field; the other names have no adapter yet.
    IMAGE_CLASSIFICATION = "image_classification", "Image classification (single label)"
    IMAGE_MULTI_LABEL = "image_multi_label", "Image classification (multi-label)"
    OBJECT_DETECTION = "object_detection", "Object detection"
    PAIR_VERIFICATION = "pair_verification", "Pair verification (same or different)"


class ClassWeighting(models.TextChoices):
    NONE = "none", "No weighting"
    INVERSE = "inverse", "Inverse frequency"
    EFFECTIVE = "effective", "Effective number of samples"


class LossName(models.TextChoices):
    CROSS_ENTROPY = "ce", "Cross-entropy"
    FOCAL = "focal", "Focal loss"


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    task_type = models.CharField(
        max_length=32, choices=TaskType.choices, default=TaskType.IMAGE_CLASSIFICATION
    )
    description = models.TextField(blank=True)
    # Shown to annotators in Label Studio: what they label and why.
    guidelines = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Active-learning settings.
    strategy = models.CharField(max_length=40, default="default")
    batch_size = models.PositiveIntegerField(default=50)
    control_fraction = models.FloatField(default=0.1)
    # Retrain after this many new ground-truth labels (0: never by count).
    retrain_every_n_labels = models.PositiveIntegerField(default=100)
    # Retrain on a schedule, every this many minutes when labels changed (0: never).
    retrain_every_minutes = models.PositiveIntegerField(default=0)
    train_epochs = models.PositiveIntegerField(default=15)
    class_weighting = models.CharField(
        max_length=16, choices=ClassWeighting.choices, default=ClassWeighting.EFFECTIVE
    )
    loss = models.CharField(max_length=16, choices=LossName.choices, default=LossName.CROSS_ENTROPY)
    image_size = models.PositiveIntegerField(default=64)
    annotator_overlap = models.PositiveIntegerField(default=1)
    holdout_fraction = models.FloatField(default=0.2)
    # Training augmentations, as changes to the task type's defaults. Image classification
    # trains on its images as they are; `ml.augment.Augment`'s flips, quarter turns,
    # rotation, shift and light changes (never a rescale) are turned on here, e.g.
    # {"hflip": 0.5, "shift_fraction": 0.05} (benchmarks/augmentation.py measures them).
    # Object detection (`ml.detection_augment.DetectionAugment`: shifts, small scale
    # changes, ink thickness, blur, light, noise, margins; no flips): e.g. {"hflip": 0.5}
    # for objects whose mirror image is the same class, {"blur": 0, "light": 0} to train on
    # what the pages show. Pair verification takes none (its own member-image ones).
    augmentations = models.JSONField(default=dict, blank=True)

    # Label Studio project this one is synchronised with.
    ls_project_id = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LabelClass(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="classes")
    name = models.CharField(max_length=100)
    order = models.PositiveIntegerField(default=0)
    target_count = models.PositiveIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["project", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_class_name_in_project")
        ]

    def __str__(self) -> str:
        return self.name

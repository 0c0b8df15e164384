from django.contrib import admin

from loupe.counters import KeptCountAdmin
from loupe.labeling.models import (
    AgreementVote,
    Annotation,
    AnnotationDayCount,
    GroundTruth,
    GroundTruthCount,
    LabelDayCount,
    LabelStudioDeletion,
    LabelStudioSync,
    LabelStudioUser,
)


@admin.register(GroundTruth)
class GroundTruthAdmin(admin.ModelAdmin):
    list_display = [
        "item",
        "label_class",
        "decided_by",
        "num_annotators",
        "agreement",
        "needs_review",
    ]
    list_filter = ["decided_by", "needs_review", "label_class__project"]
    raw_id_fields = ["item"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["ls_annotation_id", "item", "label_class", "annotator", "was_cancelled"]
    list_filter = ["was_cancelled", "label_class__project"]
    raw_id_fields = ["item", "user"]


@admin.register(LabelStudioSync)
class LabelStudioSyncAdmin(admin.ModelAdmin):
    list_display = ["project", "last_synced_at", "last_full_sync_at", "last_run_at", "last_error"]
    readonly_fields = ["push_claimed_until", "reconcile_claimed_until"]


@admin.register(LabelStudioUser)
class LabelStudioUserAdmin(admin.ModelAdmin):
    list_display = ["user", "ls_user_id", "email", "created_at"]
    search_fields = ["user__username", "email"]
    readonly_fields = ["password"]


@admin.register(LabelStudioDeletion)
class LabelStudioDeletionAdmin(admin.ModelAdmin):
    list_display = ["kind", "ls_id", "deleted_at"]
    list_filter = ["kind"]


@admin.register(GroundTruthCount)
class GroundTruthCountAdmin(KeptCountAdmin, admin.ModelAdmin):
    list_display = ["project", "label_class", "needs_review", "in_holdout", "n"]


@admin.register(AnnotationDayCount)
class AnnotationDayCountAdmin(KeptCountAdmin, admin.ModelAdmin):
    list_display = ["project", "annotator", "day", "n"]


@admin.register(LabelDayCount)
class LabelDayCountAdmin(KeptCountAdmin, admin.ModelAdmin):
    list_display = ["project", "day", "label_class", "n"]


@admin.register(AgreementVote)
class AgreementVoteAdmin(KeptCountAdmin, admin.ModelAdmin):
    list_display = ["project", "item", "annotator", "label_class", "pairs", "agree"]

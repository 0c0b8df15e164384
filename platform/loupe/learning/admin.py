from django.contrib import admin

from loupe.learning.models import (
    LearningLoop,
    ModelVersion,
    Prediction,
    ScoringChunk,
    ScoringRun,
    SelectionItem,
    SelectionRound,
    TrainingRun,
)

RUN_FIELDS = ["id", "project", "status", "phase", "progress", "created_at", "finished_at"]


@admin.register(LearningLoop)
class LearningLoopAdmin(admin.ModelAdmin):
    list_display = [*RUN_FIELDS, "step", "trigger"]
    list_filter = ["status", "step", "project"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [*RUN_FIELDS, "labels_used", "device", "attempts"]
    list_filter = ["status", "project"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["project", "version", "labels_used", "device", "created_at"]
    list_filter = ["project"]


class ScoringChunkInline(admin.TabularInline):
    model = ScoringChunk
    extra = 0
    fields = ["index", "status", "attempts", "seconds", "artifact"]
    readonly_fields = fields


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = [*RUN_FIELDS, "chunks_done", "chunks_total", "scored_items"]
    list_filter = ["status", "project"]
    inlines = [ScoringChunkInline]


@admin.register(ScoringChunk)
class ScoringChunkAdmin(admin.ModelAdmin):
    list_display = ["scoring_run", "index", "status", "attempts", "seconds"]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["item", "model_version", "predicted_class", "confidence", "uncertainty"]
    raw_id_fields = ["item"]


class SelectionItemInline(admin.TabularInline):
    model = SelectionItem
    extra = 0
    raw_id_fields = ["item"]


@admin.register(SelectionRound)
class SelectionRoundAdmin(admin.ModelAdmin):
    list_display = ["project", "number", "status", "strategy", "batch_size", "created_at"]
    list_filter = ["status", "project"]
    inlines = [SelectionItemInline]


@admin.register(SelectionItem)
class SelectionItemAdmin(admin.ModelAdmin):
    list_display = ["selection_round", "rank", "item", "strategy", "is_control", "score"]
    raw_id_fields = ["item"]

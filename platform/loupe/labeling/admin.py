from django.contrib import admin

from loupe.labeling.models import Annotation, GroundTruth


@admin.register(GroundTruth)
class GroundTruthAdmin(admin.ModelAdmin):
    list_display = ["item", "label_class", "decided_by", "num_annotators", "agreement"]
    list_filter = ["decided_by", "needs_review", "label_class__project"]
    raw_id_fields = ["item"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["ls_annotation_id", "item", "label_class", "annotator", "was_cancelled"]
    list_filter = ["was_cancelled", "label_class__project"]
    raw_id_fields = ["item"]

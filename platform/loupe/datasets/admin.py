from django.contrib import admin

from loupe.counters import KeptCountAdmin
from loupe.datasets.models import ImportJob, ImportRejection, Item, ItemStateCount


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "original_name", "state", "split", "source", "created_at"]
    list_filter = ["project", "state", "split", "source"]
    search_fields = ["original_name", "sha256"]
    raw_id_fields = ["import_job"]


class ImportRejectionInline(admin.TabularInline):
    model = ImportRejection
    extra = 0
    readonly_fields = ["path", "reason"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "source_tag", "status", "imported", "rejected"]
    list_filter = ["status", "kind", "project"]
    inlines = [ImportRejectionInline]


@admin.register(ImportRejection)
class ImportRejectionAdmin(admin.ModelAdmin):
    list_display = ["job", "path", "reason"]


@admin.register(ItemStateCount)
class ItemStateCountAdmin(KeptCountAdmin, admin.ModelAdmin):
    list_display = ["project", "state", "n"]

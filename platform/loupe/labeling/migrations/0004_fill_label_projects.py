from django.db import migrations
from django.db.models import OuterRef, Subquery


def fill(apps, schema_editor):
    """One UPDATE per table: each row takes its item's project (a correlated subquery, the
    same statement on SQLite and PostgreSQL)."""
    Item = apps.get_model("datasets", "Item")
    project_of_item = Item.objects.filter(pk=OuterRef("item_id")).values("project_id")[:1]
    for name in ("GroundTruth", "Annotation"):
        model = apps.get_model("labeling", name)
        model.objects.filter(project__isnull=True).update(project_id=Subquery(project_of_item))


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0003_project_on_labels"),
        ("datasets", "0001_initial"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]

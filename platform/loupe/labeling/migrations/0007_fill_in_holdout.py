from django.db import migrations


def fill(apps, schema_editor):
    """Marks the labels of holdout items (one UPDATE, the same on SQLite and PostgreSQL)."""
    Item = apps.get_model("datasets", "Item")
    GroundTruth = apps.get_model("labeling", "GroundTruth")
    GroundTruth.objects.filter(
        item_id__in=Item.objects.filter(split="holdout").values("pk")
    ).update(in_holdout=True)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0006_groundtruth_in_holdout"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Adds the item's project to ground truth and annotations, empty for now: the next
    migration fills it, the one after makes it required (three steps, because PostgreSQL
    refuses to alter a table with row changes pending in the same transaction)."""

    dependencies = [
        ("labeling", "0002_label_studio_sync"),
        ("projects", "0002_project_retrain_every_minutes_project_train_epochs"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.AddField(
            model_name="groundtruth",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
    ]

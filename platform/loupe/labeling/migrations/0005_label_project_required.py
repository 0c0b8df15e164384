import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0004_fill_label_projects"),
    ]

    operations = [
        migrations.AlterField(
            model_name="annotation",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.AlterField(
            model_name="groundtruth",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.AddIndex(
            model_name="groundtruth",
            index=models.Index(
                fields=["project", "label_class", "needs_review"], name="gt_project_class_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="groundtruth",
            index=models.Index(
                fields=["project", "created_at"],
                include=("label_class", "needs_review", "decided_by"),
                name="gt_project_created_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(
                fields=["project", "item"],
                include=("was_cancelled", "label_class"),
                name="annotation_project_item_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(
                fields=["project", "annotator"],
                include=("was_cancelled", "ls_updated_at", "created_at"),
                name="annotation_project_who_idx",
            ),
        ),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0005_label_project_required"),
    ]

    operations = [
        migrations.AddField(
            model_name="groundtruth",
            name="in_holdout",
            field=models.BooleanField(default=False),
        ),
        migrations.RemoveIndex(
            model_name="groundtruth",
            name="gt_project_class_idx",
        ),
        migrations.AddIndex(
            model_name="groundtruth",
            index=models.Index(
                fields=["project", "label_class", "needs_review", "in_holdout"],
                name="gt_project_class_split_idx",
            ),
        ),
    ]

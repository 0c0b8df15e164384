from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0004_trigger_batch_done"),
    ]

    operations = [
        migrations.AddField(
            model_name="selectionitem",
            name="saliency",
            field=models.FileField(blank=True, max_length=255, upload_to=""),
        ),
        migrations.AddField(
            model_name="selectionitem",
            name="neighbours",
            field=models.JSONField(blank=True, default=list),
        ),
    ]

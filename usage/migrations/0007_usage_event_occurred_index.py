from django.db import migrations, models

INDEX = models.Index(fields=["-occurred_at", "-id"], name="usage_event_occurred_idx")


def create_index(apps, schema_editor):
    """On PostgreSQL built CONCURRENTLY: a big events table keeps taking inserts meanwhile."""
    model = apps.get_model("usage", "UsageEvent")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS usage_event_occurred_idx "
            "ON usage_usageevent (occurred_at DESC, id DESC)"
        )
    else:
        schema_editor.add_index(model, INDEX)


def drop_index(apps, schema_editor):
    schema_editor.remove_index(apps.get_model("usage", "UsageEvent"), INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("usage", "0006_meter_report_attempts")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="usageevent", index=INDEX)],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
    ]

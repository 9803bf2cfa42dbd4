from django.db import migrations, models

INDEX = models.Index(fields=["-occurred_at", "-id"], name="usage_event_occurred_idx")
COLUMNS = "(occurred_at DESC, id DESC)"


def create_index(apps, schema_editor):
    """On PostgreSQL the events table is partitioned, and a partitioned table's index cannot be built
    CONCURRENTLY: the parent's index is made ON ONLY it, each partition's is built concurrently (the
    table keeps taking inserts meanwhile) and attached. Partitions made later get it by themselves."""
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.add_index(apps.get_model("usage", "UsageEvent"), INDEX)
        return
    execute = schema_editor.execute
    execute(f"CREATE INDEX IF NOT EXISTS usage_event_occurred_idx ON ONLY usage_usageevent {COLUMNS}")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'usage_usageevent'::regclass"
        )
        partitions = [row[0] for row in cursor.fetchall()]
    for partition in partitions:
        execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {partition}_occurred_idx ON {partition} {COLUMNS}")
        execute(f"ALTER INDEX usage_event_occurred_idx ATTACH PARTITION {partition}_occurred_idx")


def drop_index(apps, schema_editor):
    schema_editor.remove_index(apps.get_model("usage", "UsageEvent"), INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("usage", "0008_usage_archives")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="usageevent", index=INDEX)],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
    ]

from django.db import migrations

from orgs.staff import sync_staff_groups


def add_ingest_txid(apps, schema_editor):
    """PostgreSQL only: the inserting transaction's id on every event, for an exact incremental
    rollup. Existing events get this migration's transaction id, so the next rollup takes them."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE usage_usageevent "
        "ADD COLUMN ingest_txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint)"
    )
    # Transaction ids grow with insertion order: a BRIN index is tiny and costs the insert nothing.
    schema_editor.execute("CREATE INDEX usage_event_txid_brin ON usage_usageevent USING brin (ingest_txid)")


def drop_ingest_txid(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE usage_usageevent DROP COLUMN ingest_txid")


class Migration(migrations.Migration):
    dependencies = [("usage", "0003_buckets_and_meter_reports")]

    operations = [
        migrations.RunPython(add_ingest_txid, drop_ingest_txid),
        migrations.RunPython(sync_staff_groups, migrations.RunPython.noop),
    ]

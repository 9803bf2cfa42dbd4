"""A trigram index for the org list's search by part of a name (Django's icontains compares
UPPER(name) LIKE '%…%', which no b-tree serves: a scan of every org). PostgreSQL only; the embedded
default (SQLite) scans, which is fine at its size."""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS org_name_upper_trgm_idx ON orgs_organization "
    "USING gin (UPPER(name::text) gin_trgm_ops)",
]
DROP = ["DROP INDEX IF EXISTS org_name_upper_trgm_idx"]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("orgs", "0005_events_to_products")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]

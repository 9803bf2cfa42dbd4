"""Usage events into monthly PostgreSQL partitions; the duplicate check into UsageEventKey.

A partitioned table's unique indexes must include its partition key, so the per-product unique
event_id moves to its own table (every key ever stored: a duplicate is one however old). The rows
are copied into the new table in this migration's transaction with their ids and their
`ingest_txid` (what the rollup has taken stays taken: nothing is counted twice), and every event's
key is filled. The copy holds the table's lock: ingestion waits for it (docs/OPERATING.md).
On SQLite (the embedded default) the table stays a plain table; only the keys are filled.
"""

from datetime import UTC, datetime

from django.db import migrations, models
from django.utils import timezone

MONTHS_AHEAD = 3
FOREIGN_KEYS = [
    ("product_id", "orgs_product"),
    ("org_id", "orgs_organization"),
    ("price_id", "billing_metricprice"),
]


def _months(first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        start = datetime(year, month, 1, tzinfo=UTC)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        months.append((start, datetime(year, month, 1, tzinfo=UTC)))
    return months


def _index_and_keys(execute, table: str) -> None:
    execute(f"CREATE INDEX usage_event_org_time_idx ON {table} (org_id, product_id, occurred_at)")
    execute(f"CREATE INDEX usage_event_txid_brin ON {table} USING brin (ingest_txid)")
    for column, target in FOREIGN_KEYS:
        execute(
            f"ALTER TABLE {table} ADD CONSTRAINT usage_usageevent_{column}_fk FOREIGN KEY ({column}) "
            f"REFERENCES {target} (id) DEFERRABLE INITIALLY DEFERRED"
        )


def partition_events(apps, schema_editor):
    execute = schema_editor.execute
    if schema_editor.connection.vendor != "postgresql":
        execute(
            "INSERT INTO usage_usageeventkey (product_id, event_id, org_id, occurred_at) "
            "SELECT product_id, event_id, org_id, occurred_at FROM usage_usageevent"
        )
        return
    execute("LOCK TABLE usage_usageevent IN ACCESS EXCLUSIVE MODE")
    execute("ALTER TABLE usage_usageevent RENAME TO usage_usageevent_plain")
    execute("ALTER TABLE usage_usageevent_plain RENAME CONSTRAINT usage_usageevent_pkey TO usage_usageevent_plain_pkey")
    for index in ("usage_event_org_time_idx", "usage_event_txid_brin"):
        execute(f"ALTER INDEX {index} RENAME TO {index}_plain")
    execute(
        "CREATE TABLE usage_usageevent (LIKE usage_usageevent_plain INCLUDING DEFAULTS, "
        "PRIMARY KEY (id, occurred_at)) PARTITION BY RANGE (occurred_at)"
    )
    execute("ALTER TABLE usage_usageevent ALTER COLUMN id DROP DEFAULT")  # its own sequence below
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT min(occurred_at), max(occurred_at) FROM usage_usageevent_plain")
        first, last = cursor.fetchone()
    now = timezone.now()
    year, month = divmod(now.year * 12 + now.month - 1 + MONTHS_AHEAD, 12)
    first = min(first or now, now)
    last = max(last or now, datetime(year, month + 1, 1, tzinfo=UTC))
    for start, end in _months(first.astimezone(UTC), last.astimezone(UTC)):
        execute(
            f"CREATE TABLE usage_usageevent_p{start:%Y_%m} PARTITION OF usage_usageevent "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    execute("CREATE TABLE usage_usageevent_default PARTITION OF usage_usageevent DEFAULT")
    execute("INSERT INTO usage_usageevent SELECT * FROM usage_usageevent_plain")
    execute(
        "INSERT INTO usage_usageeventkey (product_id, event_id, org_id, occurred_at) "
        "SELECT product_id, event_id, org_id, occurred_at FROM usage_usageevent_plain ORDER BY 1, 2"
    )
    execute("DROP TABLE usage_usageevent_plain")  # its identity sequence with it
    execute("CREATE SEQUENCE usage_usageevent_id_seq OWNED BY usage_usageevent.id")
    execute("SELECT setval('usage_usageevent_id_seq', coalesce(max(id), 0) + 1, false) FROM usage_usageevent")
    execute("ALTER TABLE usage_usageevent ALTER COLUMN id SET DEFAULT nextval('usage_usageevent_id_seq')")
    _index_and_keys(execute, "usage_usageevent")
    execute("ANALYZE usage_usageevent")


def unpartition_events(apps, schema_editor):
    """Back to one plain table (every partition's rows kept); the keys go with their table."""
    execute = schema_editor.execute
    if schema_editor.connection.vendor != "postgresql":
        return
    execute("LOCK TABLE usage_usageevent IN ACCESS EXCLUSIVE MODE")
    execute("CREATE TABLE usage_usageevent_plain (LIKE usage_usageevent INCLUDING DEFAULTS)")
    execute("INSERT INTO usage_usageevent_plain SELECT * FROM usage_usageevent")
    execute("ALTER SEQUENCE usage_usageevent_id_seq OWNED BY usage_usageevent_plain.id")
    execute("DROP TABLE usage_usageevent")
    execute("ALTER TABLE usage_usageevent_plain RENAME TO usage_usageevent")
    execute("ALTER TABLE usage_usageevent ADD PRIMARY KEY (id)")
    _index_and_keys(execute, "usage_usageevent")


class Migration(migrations.Migration):
    dependencies = [("usage", "0006_meter_report_attempts")]

    operations = [
        migrations.CreateModel(
            name="UsageEventKey",
            fields=[
                ("pk", models.CompositePrimaryKey("product_id", "event_id", blank=True, editable=False, primary_key=True, serialize=False)),
                ("product_id", models.BigIntegerField()),
                ("event_id", models.CharField(max_length=128)),
                ("org_id", models.BigIntegerField()),
                ("occurred_at", models.DateTimeField()),
            ],
        ),
        migrations.RemoveConstraint(model_name="usageevent", name="usage_event_product_event_unique"),
        migrations.RunPython(partition_events, unpartition_events),
    ]

"""bench/admin: server time of the support cockpit's lists: the org list at 100,000 orgs (columns,
filters, search) and the usage-event list at 10 million events.

Data is generated with set-based SQL (no services: a bench of reads): orgs with an account (1 in 10
on pro, 1 in 50 past due, 1 in 97 blocked, 1 in 200 suspended), a balance (1 in 30 at zero) and an
owner with an email; then events spread over 60 days and the first 1,000 orgs. Each page is asked
for --repeat times through Django's test client in this process, as a logged-in superuser (the
whole request: middleware, admin, queries, template), after one warm-up; the median and p95 are
printed, with a baseline: the plan list (two rows), what any admin page costs on this machine now.
Target: ≤ 150 ms each. A database of its own (billing_bench_admin), so that other
benchmarks running at the same time are not disturbed.
"""

import argparse
import statistics
import time

import common
from common import fresh_database, percentile, say, setup_django

common.TEMPLATE, common.DATABASE = "billing_bench_admin_template", "billing_bench_admin"
common.ENV["DATABASE_URL"] = f"{common.SERVER}/{common.DATABASE}"
common.ENV["ALLOWED_HOSTS"] = "testserver"

ORGS_SQL = """
INSERT INTO orgs_organization (public_id, name, slug, billing_email, personal, created_at, updated_at)
SELECT 'org_bench' || lpad(n::text, 9, '0'), 'Company ' || n || ' ' || left(md5(n::text), 8),
       'company-' || n, 'billing' || n || '@company' || n || '.example', false,
       now() - make_interval(mins => n), now()
FROM generate_series(1, %(orgs)s) n;

INSERT INTO billing_billingaccount
    (org_id, plan_id, payment_status, overdue_since, suspended_at, suspension_reason,
     suspension_source, first_paid_at, created_at, updated_at)
SELECT o.id, CASE WHEN o.id %% 10 = 0 THEN %(pro)s ELSE %(free)s END,
       CASE WHEN o.id %% 97 = 0 THEN 'blocked' WHEN o.id %% 50 = 0 THEN 'past_due' ELSE 'ok' END,
       CASE WHEN o.id %% 97 = 0 OR o.id %% 50 = 0 THEN now() - interval '5 days' END,
       CASE WHEN o.id %% 200 = 0 THEN now() - interval '2 days' END, '',
       CASE WHEN o.id %% 200 = 0 THEN 'auto' ELSE '' END, NULL, now(), now()
FROM orgs_organization o WHERE NOT EXISTS (SELECT 1 FROM billing_billingaccount a WHERE a.org_id = o.id);

INSERT INTO billing_creditbalance (org_id, posted, billed_debt, month_overage, auto_top_up_armed, updated_at)
SELECT o.id, CASE WHEN o.id %% 30 = 0 THEN 0 ELSE 1000 END, 0, 0, true, now()
FROM orgs_organization o WHERE NOT EXISTS (SELECT 1 FROM billing_creditbalance b WHERE b.org_id = o.id);

INSERT INTO orgs_membership (org_id, user_id, role, email, joined_at, updated_at)
SELECT o.id, 'owner-' || o.id, 'owner', 'owner' || o.id || '@mail' || o.id || '.example', now(), now()
FROM orgs_organization o WHERE o.public_id LIKE 'org_bench%%';
"""

EVENTS_SQL = """
INSERT INTO usage_usageevent
    (event_id, user_id, metric, quantity, cost, overage, billable_overage, occurred_at, received_at,
     properties, org_id, price_id, product_id)
SELECT 'ev_' || n, 'user-' || (n %% 50), 'fix_run', 1, 2.5, 0, 0,
       now() - make_interval(secs => (n %% 5184000)::double precision), now(), '{}'::jsonb,
       (SELECT min(id) FROM orgs_organization) + (n %% 1000), %(price)s, %(product)s
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) n;
"""


def seed_orgs(orgs: int) -> None:
    from bench_seed import seed
    from django.db import connection

    from billing.models import Plan

    seed(orgs=0)  # the catalog, the product red and its key
    plans = dict(Plan.objects.values_list("name", "pk"))
    started = time.monotonic()
    with connection.cursor() as cursor:
        for statement in ORGS_SQL.split(";")[:-1]:
            cursor.execute(statement, {"orgs": orgs, "pro": plans["pro"], "free": plans["free"]})
        cursor.execute("ANALYZE")
    say(f"{orgs} orgs seeded in {time.monotonic() - started:.0f} s")


def seed_events(millions: float) -> None:
    from django.db import connection, transaction

    from billing.models import MetricPrice

    price = MetricPrice.objects.select_related("metric").get(metric__key="fix_run")
    total, step = int(millions * 1_000_000), 1_000_000
    started = time.monotonic()
    for start in range(1, total + 1, step):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                EVENTS_SQL,
                {
                    "start": start,
                    "stop": min(start + step - 1, total),
                    "price": price.pk,
                    "product": price.metric.product_id,
                },
            )
        say(f"events: {min(start + step - 1, total):,} ({time.monotonic() - started:.0f} s)")
    settle_events()


def settle_events() -> None:
    """What production's background work would have done for the events stored: statistics, the
    BRIN summaries, the rollup cursor past them. Idempotent."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE usage_usageevent")
        # What autovacuum does in production: summarize the new pages of the BRIN on ingest_txid
        # (unsummarized ranges match every lookup, so "events past the cursor" read them all), in
        # each partition (the table's own index is a partitioned index, with no pages).
        cursor.execute(
            "SELECT brin_summarize_new_values(i.inhrelid) FROM pg_inherits i"
            " WHERE i.inhparent = 'usage_event_txid_brin'::regclass"
        )
        # A healthy rollup (it runs every 5 minutes): the cursor past every event, so the rollup-lag
        # warning the usage pages and the org pages show reads an empty range, as in production.
        cursor.execute(
            "INSERT INTO usage_rollupcursor (name, horizon, updated_at) "
            "VALUES ('usage_buckets', pg_snapshot_xmax(pg_current_snapshot())::text::bigint, now()) "
            "ON CONFLICT (name) DO UPDATE SET horizon = EXCLUDED.horizon, updated_at = now()"
        )


def timed(client, path: str, repeat: int) -> tuple[float, float]:
    response = client.get(path)  # warm-up (and a check that the page answers)
    if response.status_code != 200:
        raise SystemExit(f"[bench] {path} answered {response.status_code}")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), percentile(times, 95)


def org_pages() -> list[tuple[str, str]]:
    from orgs.models import Membership, Organization

    some = Organization.objects.filter(public_id__startswith="org_bench").order_by("pk")[500]
    member = Membership.objects.filter(org=some).first()
    base = "/admin/orgs/organization/"
    return [
        ("baseline: plan list (2 rows)", "/admin/billing/plan/"),
        ("org list, first page", base),
        ("filter: suspended", base + "?suspended=yes"),
        ("filter: plan pro", base + "?plan=pro"),
        ("filter: past due", base + "?payment=past_due"),
        ("filter: no credits left", base + "?balance=none"),
        ("filters combined", base + "?plan=pro&suspended=no&balance=some"),
        ("search: part of a name", base + "?q=" + some.name.split()[-1]),
        ("search: slug", base + "?q=" + some.slug),
        ("search: billing email", base + "?q=" + some.billing_email.upper()),
        ("search: member email", base + "?q=" + (member.email if member else "x@y.example")),
        ("search: public id", base + "?q=" + some.public_id),
        ("search: Stripe customer id", base + "?q=cus_Nobody000000"),
        ("search: no match", base + "?q=zzzzqqq"),
        ("org page (status header)", f"{base}{some.pk}/change/"),
    ]


def event_pages() -> list[tuple[str, str]]:
    from orgs.models import Organization

    org = Organization.objects.filter(public_id__startswith="org_bench").order_by("pk").first()
    base = "/admin/usage/usageevent/"
    return [
        ("event list, first page", base),
        ("events of one org", f"{base}?org__id__exact={org.pk}" if org else base),
    ]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orgs", type=int, default=100_000)
    parser.add_argument("--events-millions", type=float, default=10, help="0: skip the event list")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the last run's data (migrated)")
    args = parser.parse_args()

    if not args.reuse:
        fresh_database()
    setup_django()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    if args.reuse:
        call_command("migrate", verbosity=0)
        if args.events_millions:
            settle_events()
    else:
        seed_orgs(args.orgs)
        if args.events_millions:
            seed_events(args.events_millions)
    client = Client()
    user = User.objects.filter(username="bench").first()
    client.force_login(user or User.objects.create_superuser("bench", "bench@example.com", "bench"))

    pages = org_pages() + (event_pages() if args.events_millions else [])
    print()
    print(
        f"bench/admin — {args.orgs:,} orgs, {args.events_millions:g} M usage events, Django test "
        f"client in process (server time), {args.repeat} requests each after a warm-up"
    )
    print(f"{'page':<32} {'median ms':>10} {'p95 ms':>8}")
    for name, path in pages:
        median, p95 = timed(client, path, args.repeat)
        print(f"{name:<32} {median:>10.1f} {p95:>8.1f}", flush=True)
    print("target: ≤ 150 ms each")


if __name__ == "__main__":
    main()

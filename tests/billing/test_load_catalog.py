import copy
import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.models import Metric, MetricPrice, Plan
from billing.services.catalog import EPOCH, CatalogError, load_catalog
from orgs.models import Product
from tests.conftest import TEST_CATALOG

pytestmark = pytest.mark.django_db


def test_it_loads_products_metrics_prices_and_plans(db):
    changes = load_catalog(TEST_CATALOG)

    assert changes["products"] == ["red", "blue"]
    red = Product.objects.get(slug="red")
    assert (red.name, red.grant_limit) == ("Red", D(5000))
    assert Product.objects.get(slug="blue").grant_limit == D(10000)  # the default
    price = MetricPrice.objects.get(metric__key="fix_run")
    assert (price.credits_per_unit, price.effective_from) == (D("2.5"), EPOCH)
    team = Plan.objects.get(name="team")
    assert (team.seat_limit, team.overage_allowed, team.monthly_price_cents) == (None, True, 19900)


def test_loading_twice_changes_nothing(db):
    load_catalog(TEST_CATALOG)
    counts = (MetricPrice.objects.count(), Metric.objects.count(), Product.objects.count())

    assert load_catalog(TEST_CATALOG) == {"products": [], "metrics": [], "prices": [], "plans": []}
    assert (MetricPrice.objects.count(), Metric.objects.count(), Product.objects.count()) == counts


def test_a_changed_price_is_a_new_version_from_now(db):
    load_catalog(TEST_CATALOG)
    changed = copy.deepcopy(TEST_CATALOG)
    changed["products"]["red"]["metrics"]["fix_run"]["credits_per_unit"] = "3"
    now = timezone.now()

    assert load_catalog(changed, now=now)["prices"] == ["red.fix_run=3"]

    versions = list(MetricPrice.objects.filter(metric__key="fix_run").order_by("effective_from"))
    assert [(v.credits_per_unit, v.effective_from) for v in versions] == [(D("2.5"), EPOCH), (D(3), now)]


def test_an_invalid_catalog_is_refused_whole_and_nothing_is_written(db):
    bad = copy.deepcopy(TEST_CATALOG)
    bad["plans"]["Enterprise plan"] = {"monthly_credits": "1", "seats": 1}
    bad["products"]["red"]["metrics"]["fix_run"]["credits_per_unit"] = "-1"
    bad["products"]["red"]["bill_from"] = "2026-12-01T00:30:00Z"

    with pytest.raises(CatalogError) as raised:
        load_catalog(bad)

    problems = " | ".join(raised.value.problems)
    assert "plans.Enterprise plan: a plan's name is a slug" in problems
    assert "fix_run.credits_per_unit" in problems
    assert "bill_from: must fall on a whole hour" in problems
    assert not Product.objects.exists()


def test_product_terms_are_checked_as_a_staff_edit_checks_them(db):
    bad = copy.deepcopy(TEST_CATALOG)
    bad["products"]["red"]["bill_from"] = "2026-12-01T05:00:00+05:30"  # a whole hour in Delhi, 23:30 UTC
    bad["products"]["red"]["grant_limit"] = "1e14"  # does not fit NUMERIC(20, 6)
    bad["products"]["blue"]["name"] = "B" * 101

    with pytest.raises(CatalogError) as raised:
        load_catalog(bad)

    assert sorted(raised.value.problems) == [
        "products.blue.name: must be 1 to 100 characters.",
        "products.red.bill_from: must fall on a whole hour (UTC), not 2026-11-30T23:30:00+00:00.",
        "products.red.grant_limit: must be a number of credits: Below 10^14.",
    ]
    assert not Product.objects.exists()


def test_a_product_may_have_its_own_bill_from(db):
    catalog = copy.deepcopy(TEST_CATALOG)
    catalog["products"]["red"]["bill_from"] = "2026-12-01T00:00:00Z"

    load_catalog(catalog)

    assert Product.objects.get(slug="red").bill_from.isoformat() == "2026-12-01T00:00:00+00:00"


def test_the_command_reads_toml_and_reports_changes(tmp_path, capsys, settings):
    call_command("load_catalog", str(settings.BASE_DIR / "catalog" / "example.toml"))
    first = json.loads(capsys.readouterr().out)
    call_command("load_catalog", str(settings.BASE_DIR / "catalog" / "example.toml"))
    second = json.loads(capsys.readouterr().out)

    assert "red.fix_run=2.5" in first["prices"]
    assert second == {"products": [], "metrics": [], "prices": [], "plans": []}
    bad = tmp_path / "bad.toml"
    bad.write_text("[plans.gold]\nmonthly_credits = '1'\n")
    with pytest.raises(CommandError, match=r"plans\.gold"):
        call_command("load_catalog", str(bad))


def test_old_usage_keeps_its_price(api, org, catalog):
    event = {
        "event_id": "e-old",
        "org_id": org.public_id,
        "metric": "fix_run",
        "quantity": "2",
        "occurred_at": (timezone.now() - timedelta(hours=1)).isoformat(),
    }
    api.post("/api/v1/usage/events", {"events": [event]}, format="json")
    changed = copy.deepcopy(TEST_CATALOG)
    changed["products"]["red"]["metrics"]["fix_run"]["credits_per_unit"] = "3"
    load_catalog(changed)
    backdated = {**event, "event_id": "e-backdated"}  # happened before the change: the old price
    fresh = {**event, "event_id": "e-new", "occurred_at": timezone.now().isoformat()}
    api.post("/api/v1/usage/events", {"events": [backdated, fresh]}, format="json")

    from usage.models import UsageEvent

    costs = dict(UsageEvent.objects.values_list("event_id", "cost"))
    assert costs == {"e-old": D(5), "e-backdated": D(5), "e-new": D(6)}


def test_without_ranks_plans_rank_by_price_then_credits(db):
    load_catalog(TEST_CATALOG)

    assert list(Plan.objects.values_list("name", flat=True)) == ["free", "pro", "team"]  # ordered by rank
    assert Plan.objects.default().name == "free"


def test_given_ranks_decide_and_may_swap(db):
    catalog = copy.deepcopy(TEST_CATALOG)
    for rank, name in enumerate(["free", "team", "pro"]):
        catalog["plans"][name]["rank"] = rank

    load_catalog(catalog)  # pro and team swap: the unique ranks step aside first

    assert list(Plan.objects.values_list("name", flat=True)) == ["free", "team", "pro"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"pro": {"rank": 5}}, "plans: give `rank` to every plan or to none"),
        (
            {"free": {"rank": 1}, "pro": {"rank": 1}, "team": {"rank": 2}},
            "plans: two plans have the same rank",
        ),
        (
            {"free": {"default": True}, "pro": {"default": True}},
            "plans: one default plan at most, not free, pro",
        ),
        ({"pro": {"default": True}}, "plans.pro.default: the default plan has no monthly price"),
        ({"pro": {"seat": 3}}, "plans.pro: unknown keys seat"),
    ],
)
def test_plan_rules_are_checked(db, change, problem):
    catalog = copy.deepcopy(TEST_CATALOG)
    for name, keys in change.items():
        catalog["plans"][name].update(keys)

    with pytest.raises(CatalogError) as raised:
        load_catalog(catalog)

    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_the_default_plan_moves_only_when_the_catalog_says_so(db):
    catalog = copy.deepcopy(TEST_CATALOG)
    catalog["plans"]["starter"] = {"monthly_credits": "500", "seats": 1}
    load_catalog(catalog)
    assert Plan.objects.default().name == "free"  # no `default`: it stays

    catalog["plans"]["starter"]["default"] = True
    load_catalog(catalog)

    assert Plan.objects.default().name == "starter"
    assert Plan.objects.filter(is_default=True).count() == 1


def test_a_rank_held_by_a_plan_the_catalog_does_not_list_is_refused(db):
    load_catalog(TEST_CATALOG)
    catalog = copy.deepcopy(TEST_CATALOG)
    del catalog["plans"]["team"]  # stays in the database with rank 2
    catalog["plans"]["enterprise"] = {"monthly_credits": "1", "monthly_price_cents": 99900}

    with pytest.raises(CatalogError) as raised:
        load_catalog(catalog)

    assert raised.value.problems == [
        "plans.enterprise.rank: 2 is the rank of team, a plan this catalog does not list"
    ]

import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import hypothesis
import pytest
import time_machine
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import AllowanceClaim, BillingAccount, ClaimStatus, Plan
from billing.periods import month_of
from billing.selectors import allowance_plan
from billing.services.catalog import load_catalog
from billingsite import celery_app
from orgs.models import Role
from orgs.services.audit import Actor
from orgs.services.memberships import upsert_membership
from orgs.services.products import ensure_product, issue_api_key
from orgs.staff import SUPPORT, sync_staff_groups
from tests.event_receiver import receiver  # noqa: F401 (a product's event receiver)
from tests.factories import OrganizationFactory
from tests.stripe_standin.fixtures import *  # noqa: F403 (the Stripe stand-in's fixtures, for every test)

OWNER = "user-owner"
MEMBER = "user-member"
OUTSIDER = "user-outsider"


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql" or not settings.REDIS_URL:
        pytest.exit(
            "The tests run on PostgreSQL and Redis: run bin/test (it finds or starts them), or set "
            "DATABASE_URL=postgres://… and REDIS_URL=redis://….",
            returncode=2,
        )


# Every test runs on a pinned clock, never the date it happens to run on. TEST_CLOCK moves it (bin/test
# reruns the calendar-sensitive tests at month ends, the year end and a leap day); a test that is about
# a particular instant pins its own inside this one.
DEFAULT_CLOCK = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
CLOCK = datetime.fromisoformat(os.environ["TEST_CLOCK"]) if os.environ.get("TEST_CLOCK") else DEFAULT_CLOCK


# The apps whose rules read the calendar (months, expiry, overdue days, hours). Their tests that do not
# pin an instant of their own are "calendar" tests: bin/test reruns them at the last second of a month,
# the first of the next, the year's last second and a leap day.
CALENDAR_APPS = {"billing", "usage", "orgs"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.parent.name in CALENDAR_APPS and not item.get_closest_marker("time_machine"):
            item.add_marker(pytest.mark.calendar)


@pytest.fixture(autouse=True)
def _receipts_written_through(monkeypatch):
    """Each decision receipt is written as it is recorded (a process batches them for a second in
    production): nothing waits in memory from one test's rolled-back data into the next."""
    from billing.services import receipts

    monkeypatch.setattr(receipts, "FLUSH_SECONDS", 0)


@pytest.fixture(autouse=True)
def _pinned_clock(request):
    # A test's own @pytest.mark.time_machine(...) instant also holds for its fixtures' setup.
    marker = request.node.get_closest_marker("time_machine")
    args, kwargs = (marker.args, marker.kwargs) if marker else ((CLOCK,), {"tick": False})
    with time_machine.travel(*args, **kwargs):
        yield


# Property-based tests: a quick profile for every run, a deep one to run by hand or nightly
# (HYPOTHESIS_PROFILE=deep bin/test tests/billing/test_ledger_properties.py).
hypothesis.settings.register_profile("ci", max_examples=20, stateful_step_count=25, deadline=None)
hypothesis.settings.register_profile("deep", max_examples=500, stateful_step_count=60, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def load_reference_data():
    """What the data migrations load (plans: the test catalog's; staff groups); idempotent."""
    load_catalog({"plans": TEST_CATALOG["plans"]})
    sync_staff_groups(django_apps)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # A reused test database was last flushed by a committing test.
    with django_db_blocker.unblock():
        load_reference_data()


@pytest.fixture(autouse=True)
def _reference_data_after_flush(request):
    # Committing tests (django_db(transaction=True)) end with a flush of every table.
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        load_reference_data()


@pytest.fixture(autouse=True)
def _forget_what_processes_remember():
    # Remembered per process: a flushed database gives the same Stripe account another primary key.
    from billing import djstripe_keys
    from orgs.services.events import forget_noted_product_orgs

    djstripe_keys.forget()
    forget_noted_product_orgs()


@pytest.fixture(autouse=True)
def _celery_join_flag():
    yield
    # Celery's eager apply sets a process-wide "inside a task" flag and restores what it found on
    # the way out: eager tasks in concurrent threads (the concurrency tests run webhooks' tasks in
    # their request threads) can leave it set, and a later result.get() then refuses to wait.
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_in_process():
    # Tests run tasks where they are enqueued; the one real-worker test turns this off.
    celery_app.conf.task_always_eager = True


TEST_CATALOG = {
    "products": {
        "red": {
            "name": "Red",
            "grant_limit": "5000",
            "metrics": {
                "fix_run": {"unit": "run", "credits_per_unit": "2.5", "description": "One auto-fix run"},
                "token": {"unit": "token", "credits_per_unit": "0.000003", "description": "One model token"},
            },
        },
        "blue": {"name": "Blue", "metrics": {"build_minute": {"unit": "minute", "credits_per_unit": "1"}}},
    },
    "plans": {
        "free": {"monthly_credits": "1000", "seats": 3, "overage": False},
        "pro": {
            "monthly_credits": "20000",
            "seats": 20,
            "overage": True,
            "monthly_price_cents": 4900,
            "overage_cents_per_credit": "0.5",
        },
        "team": {
            "monthly_credits": "100000",
            "overage": True,
            "monthly_price_cents": 19900,
            "overage_cents_per_credit": "0.4",
        },
    },
}

# The test catalog's terms, by name: a test that depends on a plan's credits or a metric's price reads
# them here, so changing the catalog moves its tests with it.
FREE_CREDITS = Decimal(TEST_CATALOG["plans"]["free"]["monthly_credits"])
PRO_CREDITS = Decimal(TEST_CATALOG["plans"]["pro"]["monthly_credits"])
TEAM_CREDITS = Decimal(TEST_CATALOG["plans"]["team"]["monthly_credits"])
FREE_SEATS = TEST_CATALOG["plans"]["free"]["seats"]
FIX_RUN = Decimal(TEST_CATALOG["products"]["red"]["metrics"]["fix_run"]["credits_per_unit"])


def as_api(credits: Decimal) -> str:
    """Credits as the API writes them: a decimal string with 6 places."""
    return f"{credits:.6f}"


@pytest.fixture
def catalog(db):
    """The test catalog: red (fix_run 2.5, token 0.000003 credits) and blue (build_minute 1)."""
    load_catalog(TEST_CATALOG)


@pytest.fixture
def product(db):
    return ensure_product(slug="red", name="Red")[0]


@pytest.fixture
def other_product(db):
    return ensure_product(slug="blue", name="Blue")[0]


def client_with(key: str) -> APIClient:
    """A new API client sending `key`: one per thread in concurrency tests."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def api_key(product) -> str:
    return issue_api_key(product=product, name="tests", actor=Actor.system("tests"))[1]


@pytest.fixture
def api(api_key) -> APIClient:
    """An API client authenticated as the product `red`."""
    return client_with(api_key)


@pytest.fixture
def other_api(other_product) -> APIClient:
    """An API client authenticated as the product `blue`."""
    return client_with(issue_api_key(product=other_product, name="tests", actor=Actor.system("tests"))[1])


@pytest.fixture
def org(db):
    """An org on the free plan (3 seats) whose owner is OWNER and with one plain MEMBER."""
    org = OrganizationFactory(owner_user_id=OWNER)
    upsert_membership(org=org, user_id=MEMBER, role=Role.MEMBER, actor=Actor.system("tests"))
    return org


@pytest.fixture
def other_org(db):
    """Another org, owned by OUTSIDER: nobody in `org` belongs to it."""
    return OrganizationFactory(owner_user_id=OUTSIDER)


def staff(name: str, group: str) -> User:
    """A staff user in one of the staff groups (orgs/staff.py)."""
    user = User.objects.create_user(name, f"{name}@staff.example", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def support(client):
    """The admin's test client, logged in as a Support-group user (`client.user`)."""
    client.user = staff("sam", SUPPORT)
    client.force_login(client.user)
    return client


def fill_seats(org, *, leave: int = 0) -> None:
    """Add members until the org's plan has only `leave` seats free (the free plan: FREE_SEATS)."""
    from orgs.selectors import seat_limit, seats_in_use

    for n in range(seat_limit(org) - leave - seats_in_use(org, now=timezone.now())):
        upsert_membership(org=org, user_id=f"filler-{n}", role=Role.MEMBER, actor=Actor.system("tests"))


def set_plan(org, name: str, **account):
    """Test setup: put the org on a plan (in production only Stripe events decide it, through
    apply_plan). The month's allowance stays what it was: the new plan's claim is recorded as granted
    with no top-up, so the org keeps the credits it had (tests state the credits they need)."""
    BillingAccount.objects.filter(org=org).update(plan=Plan.objects.get(name=name), **account)
    moved = BillingAccount.objects.select_related("plan").get(org=org)
    AllowanceClaim.objects.get_or_create(
        org=org,
        month=month_of(timezone.now()),
        plan=allowance_plan(moved),
        defaults={"status": ClaimStatus.GRANTED, "credits": 0},
    )


def submitted(data: dict) -> dict:
    """An admin action form's data as the page sends it: with the form's one-time token."""
    return {**data, "submission": str(uuid.uuid4())}

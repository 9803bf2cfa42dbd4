"""The org list: plan, payment status, suspended and available balance, a filter for each, one search."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import BillingAccount, CreditBalance, PaymentStatus
from billing.services.suspensions import suspend_organization
from orgs.models import Role
from orgs.services.audit import Actor
from orgs.services.memberships import upsert_membership
from tests.conftest import DEFAULT_CLOCK, FREE_CREDITS, set_plan
from tests.factories import OrganizationFactory

# The page's words name days and dates ("4 days ago", "on 12 Nov"): pinned at the suite's instant.
pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(DEFAULT_CLOCK, tick=False)]
LIST = reverse("admin:orgs_organization_changelist")


def listed(client, **params) -> list[str]:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return sorted(org.name for org in response.context["cl"].result_list)


@pytest.fixture
def orgs(catalog):
    """Four orgs: ok on free, past_due on pro, auto-suspended, manually suspended with no credits."""
    ok = OrganizationFactory(name="Acme", billing_email="ap@acme.example", slug="acme")
    late = OrganizationFactory(name="Globex", billing_email="ap@globex.example")
    set_plan(late, "pro", payment_status=PaymentStatus.PAST_DUE)
    auto = OrganizationFactory(name="Initech", billing_email="ap@initech.example")
    BillingAccount.objects.filter(org=auto).update(
        payment_status=PaymentStatus.BLOCKED, suspended_at="2026-11-10T00:00Z", suspension_source="auto"
    )
    manual = OrganizationFactory(name="Umbrella", billing_email="ap@umbrella.example")
    suspend_organization(org=manual, reason="fraud", actor=Actor.system("tests"))
    CreditBalance.objects.filter(org=manual).update(posted=Decimal("-3.5"))
    upsert_membership(
        org=manual,
        user_id="u-alice",
        role=Role.MEMBER,
        email="Alice@Umbrella.example",
        actor=Actor.system("t"),
    )
    return {"ok": ok, "late": late, "auto": auto, "manual": manual}


def test_the_list_shows_plan_payment_status_suspension_and_available_balance(support, orgs):
    html = support.get(LIST).content.decode()

    for heading in ("Plan", "Payment status", "Suspended", "Available credits"):
        assert f">{heading}<" in html or f">{heading}</a>" in html
    assert "Manual</strong> since 2026-11-18" in html and "Auto</strong> since 2026-11-10" in html
    assert ">-3.5<" in html  # the manual org's debt, in red
    assert f">{FREE_CREDITS.normalize():f}<" in html  # trailing zeros trimmed


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"plan": "pro"}, ["Globex"]),
        ({"payment": "past_due"}, ["Globex"]),
        ({"payment": "blocked"}, ["Initech"]),
        ({"suspended": "yes"}, ["Initech", "Umbrella"]),
        ({"suspended": "auto"}, ["Initech"]),
        ({"suspended": "manual"}, ["Umbrella"]),
        ({"suspended": "no"}, ["Acme", "Globex"]),
        ({"balance": "negative"}, ["Umbrella"]),
        ({"balance": "none"}, ["Umbrella"]),
        ({"balance": "some", "suspended": "no"}, ["Acme", "Globex"]),
    ],
)
def test_a_filter_for_each_column(support, orgs, params, names):
    assert listed(support, **params) == names


@pytest.mark.parametrize(
    ("term", "names"),
    [
        ("glob", ["Globex"]),  # part of the name
        ("acme", ["Acme"]),  # the slug (and the name)
        ("AP@Initech.example", ["Initech"]),  # the billing email, any case
        ("alice@umbrella.EXAMPLE", ["Umbrella"]),  # a member's email
    ],
)
def test_one_search_box(support, orgs, term, names):
    assert listed(support, q=term) == names


def test_it_finds_an_org_by_its_public_id(support, orgs):
    assert listed(support, q=orgs["late"].public_id) == ["Globex"]


def test_it_finds_an_org_by_its_stripe_customer_id(support, org, customer):
    OrganizationFactory(name="Someone else")

    assert listed(support, q=customer) == [org.name]
    assert listed(support, q="cus_nobody") == []


def test_the_page_costs_the_same_queries_for_3_or_30_orgs(support, orgs, django_assert_num_queries):
    with CaptureQueriesContext(connection) as few:
        support.get(LIST)
    for n in range(26):
        OrganizationFactory(name=f"More {n}")

    with django_assert_num_queries(len(few.captured_queries)):
        support.get(LIST)

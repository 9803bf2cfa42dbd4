"""The status header of the org's admin page: why is this org blocked, in one glance."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from billing.admin.status import organization_status
from billing.models import CreditBalance
from billing.services.accounts import soft_delete_organization
from billing.services.suspensions import reconcile_suspensions, suspend_organization
from core.display import money_text
from orgs.services.audit import Actor
from orgs.staff import SUPPORT
from tests.billing.conftest import deliver, subscribe
from tests.conftest import DEFAULT_CLOCK, MEMBER, set_plan, staff

# The page's words name days and dates ("4 days ago", "on 12 Nov"): pinned at the suite's instant.
pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(DEFAULT_CLOCK, tick=False)]
CHECK = "/api/v1/entitlements:check"


def page(client, org) -> str:
    response = client.get(reverse("admin:orgs_organization_change", args=[org.pk]))
    assert response.status_code == 200
    return response.content.decode()


def header(client, org) -> str:
    html = page(client, org)
    start = html.index('<section id="org-status"')
    return html[start : html.index("</section>", start)]


def check(api, org, user_id=MEMBER):
    return api.post(CHECK, {"org_id": org.public_id, "user_id": user_id, "metric": "fix_run"}, format="json")


@pytest.fixture
def pro(org, customer, stripe_catalog, stripe_standin):
    plan = stripe_catalog["pro"]
    return subscribe(stripe_standin, org, plan), plan


def fail_plan_invoice(stripe_standin, post_webhook, customer, pro) -> dict:
    subscription, plan = pro
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, status="open", lines=[(plan.stripe_price_id, 4900)]
    )
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    return invoice


def fail_metered_invoice(stripe_standin, post_webhook, customer, pro) -> dict:
    subscription, plan = pro
    invoice = stripe_standin.add_invoice(
        customer, subscription=subscription, status="open", lines=[(plan.stripe_overage_price_id, 1850, 3700)]
    )
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])
    return invoice


def test_a_healthy_org_is_allowed_at_the_top_of_its_page(support, org, catalog):
    html = header(support, org)

    assert "Allowed: members’ calls pass the entitlement check." in html.replace("'", "’").replace(
        "&#x27;", "’"
    )
    assert "free" in html and "never paid" in html


def test_an_auto_suspended_org_says_which_invoice_and_what_lifts_it(
    support, org, customer, pro, stripe_standin, post_webhook
):
    invoice = fail_plan_invoice(stripe_standin, post_webhook, customer, pro)
    with time_machine.travel(timezone.now() + timedelta(days=4, minutes=1)):
        reconcile_suspensions()
        html = header(support, org)

    assert (
        f"Blocked: Plan invoice {invoice['id']} ($49.00) failed 4 days ago and this org has never paid;"
        " auto-suspended on 22 Nov 2026. Paying it lifts the suspension." in html
    )
    assert f"https://dashboard.stripe.com/test/invoices/{invoice['id']}" in html
    assert "auto, since 22 Nov 2026" in html and "reconcile_suspensions" in html


def test_every_reason_that_denies_is_listed_with_what_lifts_each(
    support, org, customer, pro, stripe_standin, post_webhook
):
    invoice = fail_metered_invoice(stripe_standin, post_webhook, customer, pro)
    suspend_organization(org=org, reason="chargeback under review", actor=Actor.staff(support.user))

    status = organization_status(org)
    html = header(support, org)

    assert [rule.reason for rule in status.denying] == ["billing_suspended", "payment_blocked"]
    assert "Blocked: suspended by sam on 18 Nov 2026: “chargeback under review”." in html
    assert f"Blocked: Metered invoice {invoice['id']} ($18.50) failed today: usage is blocked" in html
    assert "Paying it (or voiding it in Stripe) lifts the block." in html


def test_a_past_due_org_is_allowed_and_told_when_it_is_suspended(
    support, org, customer, pro, stripe_standin, post_webhook
):
    fail_plan_invoice(stripe_standin, post_webhook, customer, pro)

    html = header(support, org)

    assert "Allowed: members" in html
    assert "auto-suspended from 21 Nov 2026 unless it pays" in html
    assert "overdue since 18 Nov 2026" in html


def test_an_org_without_credits_on_a_plan_without_overage(support, org, catalog):
    CreditBalance.objects.filter(org=org).update(posted=Decimal(0))
    set_plan(org, "free")

    status = organization_status(org)

    assert [rule.reason for rule in status.denying] == ["insufficient_credits"]
    assert "the available balance is 0" in status.sentences[0]


def test_the_page_and_the_api_agree(api, support, org, customer, pro, stripe_standin, post_webhook):
    """One rule, two views: what the check answers is the verdict's first reason."""
    assert check(api, org).json()["reason"] == "ok" and not organization_status(org).denying

    fail_metered_invoice(stripe_standin, post_webhook, customer, pro)
    assert check(api, org).json()["reason"] == organization_status(org).denying[0].reason == "payment_blocked"

    suspend_organization(org=org, reason="fraud", actor=Actor.system("tests"))
    assert check(api, org).json()["reason"] == organization_status(org).denying[0].reason
    assert organization_status(org).denying[0].reason == "billing_suspended"


def test_support_sees_the_header_and_it_costs_a_few_queries(
    client, org, catalog, django_assert_max_num_queries
):
    client.force_login(staff("sue", SUPPORT))
    assert 'id="org-verdict"' in page(client, org)
    suspend_organization(org=org, reason="fraud", actor=Actor.system("tests"))
    with django_assert_max_num_queries(12):
        organization_status(org)


def test_money_is_shown_in_its_currency():
    money = money_text  # the status header writes amounts with the back office's one helper
    assert (money(4900, "eur"), money(120000, "usd"), money(1200, "chf"), money(None, "eur")) == (
        "€49.00",
        "$1,200.00",
        "12.00 CHF",
        "",
    )


def test_a_soft_deleted_org_says_products_get_404(api, support, org, catalog):
    soft_delete_organization(org=org, reason="closing", actor=Actor.staff(support.user))

    html = header(support, org)

    assert "Blocked: soft-deleted on 18 Nov 2026, so products get 404 org_not_found." in html
    assert check(api, org).status_code == 404


def test_the_whole_org_page_reads_each_inline_once(client, org, catalog, django_assert_max_num_queries):
    """Every section's inline is one query, however many forms and counts the admin builds from it
    (a slice made anew per call once ran each inline's query 16 times: 217 queries a page)."""
    client.force_login(staff("sue", SUPPORT))
    suspend_organization(org=org, reason="fraud", actor=Actor.system("tests"))  # audit rows, a header
    page(client, org)  # warm-up: content types, permissions
    with django_assert_max_num_queries(60):
        assert 'id="org-verdict"' in page(client, org)

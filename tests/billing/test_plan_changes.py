"""Plan changes: upgrades at once (proration invoiced now), downgrades and cancels at the period end,
all written to Stripe through the outbox; the plan here follows Stripe's subscription only."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from billing.models import BillingAccount, CreditGrant, GrantType, PlanChange, PlanChangeStatus
from billing.services.payments import sync_plan
from orgs.models import AuditEntry, OutboxMessage
from orgs.services.audit import Actor
from orgs.services.outbox import process_outbox
from orgs.staff import BILLING_ADMIN, SUPPORT
from tests.billing.conftest import deliver, subscribe
from tests.conftest import MEMBER, OUTSIDER, OWNER, TEAM_CREDITS, staff, submitted

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
PERIOD_START = int(datetime(2026, 11, 3, tzinfo=UTC).timestamp())
PERIOD_END = int(datetime(2026, 12, 3, tzinfo=UTC).timestamp())


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def url(org):
    return f"/api/v1/orgs/{org.public_id}/subscription:change"


def change(api, org, plan, key="k1", user_id=OWNER):
    response = api.post(url(org), {"plan": plan, "user_id": user_id, "idempotency_key": key}, format="json")
    process_outbox()  # the fast path (a task after the commit) is not run inside a test's transaction
    return response


def plan_of(org):
    return BillingAccount.objects.get(org=org).plan.name


@pytest.fixture
def on_plan(org, customer, stripe_standin, stripe_catalog):
    """`on_plan("pro")`: the org subscribed to that plan at Stripe, and synced here."""

    def subscribe_to(name):
        subscription = subscribe(
            stripe_standin,
            org,
            stripe_catalog[name],
            current_period_start=PERIOD_START,
            current_period_end=PERIOD_END,
        )
        sync_plan(org=org, actor=Actor.system("tests"))
        assert plan_of(org) == name
        return subscription

    return subscribe_to


def writes_to(standin, subscription_id):
    return [r for r in standin.requests_to("POST", f"/v1/subscriptions/{subscription_id}") if not r.replayed]


def test_an_upgrade_takes_effect_at_once_with_the_difference_invoiced(
    api, org, on_plan, stripe_standin, stripe_catalog
):
    subscription = on_plan("pro")
    pro, team = stripe_catalog["pro"], stripe_catalog["team"]

    response = change(api, org, "team")

    assert response.status_code == 202
    (write,) = writes_to(stripe_standin, subscription["id"])
    assert write.params["proration_behavior"] == "always_invoice"
    assert {item.get("price") for item in write.params["items"]} == {
        team.stripe_price_id,
        team.stripe_overage_price_id,
    }
    assert write.idempotency_key.startswith("plan-change:") and write.idempotency_key.endswith(":upgrade")
    now_at_stripe = stripe_standin.get(subscription["id"])
    assert {i["price"]["id"] for i in now_at_stripe["items"]["data"]} == {
        team.stripe_price_id,
        team.stripe_overage_price_id,
    }
    invoice = stripe_standin.get(now_at_stripe["latest_invoice"])
    assert (invoice["billing_reason"], invoice["status"]) == ("subscription_update", "paid")
    amounts = sorted(line["amount"] for line in invoice["lines"]["data"])
    assert amounts[0] < 0 < amounts[1]  # unused pro time credited, remaining team time charged
    assert invoice["amount_paid"] == sum(amounts) > 0
    assert pro.stripe_price_id in {
        line["pricing"]["price_details"]["price"] for line in invoice["lines"]["data"]
    }
    # The plan followed Stripe's subscription; the month's allowance topped up to team's amount.
    assert plan_of(org) == "team"
    allowances = CreditGrant.objects.filter(org=org, grant_type=GrantType.ALLOWANCE)
    assert sum(grant.amount for grant in allowances) == TEAM_CREDITS
    assert PlanChange.objects.get().status == PlanChangeStatus.DONE
    assert api.get(f"/api/v1/orgs/{org.public_id}").json()["pending_plan"] is None
    assert AuditEntry.objects.filter(org=org, action="billing.plan_change_requested").count() == 1


def test_the_answer_says_the_plan_now_and_what_is_pending(api, org, on_plan, monkeypatch):
    on_plan("pro")
    monkeypatch.setattr("orgs.services.outbox._perform_soon", lambda message_id: None)

    response = api.post(url(org), {"plan": "team", "user_id": OWNER, "idempotency_key": "k"}, format="json")

    assert response.status_code == 202
    assert response.json() == {
        "plan": "pro",
        "pending_plan": "team",
        "pending_plan_at": "2026-11-18T10:00:00Z",
    }


def test_the_same_request_twice_is_one_change_and_one_stripe_write(api, org, on_plan, stripe_standin):
    subscription = on_plan("pro")

    first = change(api, org, "team")
    second = change(api, org, "team")

    assert first.status_code == second.status_code == 202
    assert first.json()["pending_plan"] == "team"  # answered before the outbox wrote to Stripe
    assert second.json() == {"plan": "team", "pending_plan": None, "pending_plan_at": None}
    assert PlanChange.objects.count() == OutboxMessage.objects.count() == 1
    assert len(writes_to(stripe_standin, subscription["id"])) == 1


def test_the_same_key_for_another_plan_is_a_conflict(api, org, on_plan, stripe_standin):
    on_plan("pro")
    change(api, org, "team")

    response = change(api, org, "free")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert PlanChange.objects.count() == 1


def test_a_downgrade_waits_for_the_period_end_through_a_schedule(
    api, org, on_plan, stripe_standin, stripe_catalog, post_webhook
):
    subscription = on_plan("team")
    pro, team = stripe_catalog["pro"], stripe_catalog["team"]

    response = change(api, org, "pro")

    assert response.json() == {
        "plan": "team",
        "pending_plan": "pro",
        "pending_plan_at": "2026-12-03T00:00:00Z",
    }
    assert not writes_to(stripe_standin, subscription["id"])  # the items are not touched now
    (schedule,) = stripe_standin.get_all("subscription_schedule")
    assert schedule["subscription"] == subscription["id"] and schedule["end_behavior"] == "release"
    first, second = schedule["phases"]
    assert [i["price"] for i in first["items"]] == [team.stripe_price_id, team.stripe_overage_price_id]
    assert (first["start_date"], first["end_date"]) == (PERIOD_START, PERIOD_END)
    assert [i["price"] for i in second["items"]] == [pro.stripe_price_id, pro.stripe_overage_price_id]
    assert second["start_date"] == PERIOD_END
    body = api.get(f"/api/v1/orgs/{org.public_id}").json()
    assert (body["plan"], body["pending_plan"], body["pending_plan_at"]) == (
        "team",
        "pro",
        "2026-12-03T00:00:00Z",
    )

    # An event before the period end changes nothing: Stripe's subscription is still on team.
    deliver(stripe_standin, post_webhook, "customer.subscription.updated", subscription["id"])
    assert plan_of(org) == "team"

    stripe_standin.close_period(subscription["id"])
    deliver(stripe_standin, post_webhook, "customer.subscription.updated", subscription["id"])

    assert plan_of(org) == "pro"
    assert PlanChange.objects.get().status == PlanChangeStatus.DONE
    assert api.get(f"/api/v1/orgs/{org.public_id}").json()["pending_plan"] is None


def test_a_change_to_the_default_plan_cancels_at_the_period_end(
    api, org, on_plan, stripe_standin, post_webhook
):
    subscription = on_plan("pro")

    response = change(api, org, "free")

    assert response.json() == {
        "plan": "pro",
        "pending_plan": "free",
        "pending_plan_at": "2026-12-03T00:00:00Z",
    }
    at_stripe = stripe_standin.get(subscription["id"])
    assert at_stripe["cancel_at_period_end"] is True
    assert at_stripe["metadata"]["billing_cancel_reason"] == "plan_change"
    assert plan_of(org) == "pro"

    stripe_standin.close_period(subscription["id"])
    deliver(stripe_standin, post_webhook, "customer.subscription.deleted", subscription["id"])

    assert plan_of(org) == "free"
    assert PlanChange.objects.get().status == PlanChangeStatus.DONE


def test_asking_for_the_plan_in_force_undoes_a_pending_downgrade(api, org, on_plan, stripe_standin):
    subscription = on_plan("team")
    change(api, org, "pro", key="down")

    response = change(api, org, "team", key="back")

    assert response.status_code == 202
    body = api.get(f"/api/v1/orgs/{org.public_id}").json()
    assert (body["plan"], body["pending_plan"], body["pending_plan_at"]) == ("team", None, None)
    (schedule,) = stripe_standin.get_all("subscription_schedule")
    assert schedule["status"] == "released"
    assert stripe_standin.get(subscription["id"])["schedule"] is None
    statuses = dict(PlanChange.objects.values_list("idempotency_key", "status"))
    assert statuses == {"down": PlanChangeStatus.SUPERSEDED, "back": PlanChangeStatus.DONE}


def test_an_upgrade_after_a_pending_cancel_keeps_the_subscription(api, org, on_plan, stripe_standin):
    subscription = on_plan("pro")
    change(api, org, "free", key="cancel")

    change(api, org, "team", key="up")

    at_stripe = stripe_standin.get(subscription["id"])
    assert at_stripe["cancel_at_period_end"] is False
    assert "billing_cancel_reason" not in at_stripe["metadata"]
    assert plan_of(org) == "team"


def test_a_payment_failure_cancellation_is_not_undone_by_a_plan_change(
    api, org, on_plan, stripe_standin, stripe_catalog
):
    subscription = on_plan("pro")
    stripe_standin.update(
        subscription["id"], cancel_at_period_end=True, metadata={"billing_cancel_reason": "payment_failure"}
    )

    change(api, org, "team")

    assert stripe_standin.get(subscription["id"])["cancel_at_period_end"] is True


def test_without_a_subscription_it_is_409_no_subscription(api, org, customer, stripe_catalog, stripe_standin):
    response = change(api, org, "pro")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "no_subscription")
    assert not PlanChange.objects.exists() and not OutboxMessage.objects.exists()


def test_the_same_plan_is_409_plan_unchanged(api, org, on_plan):
    on_plan("pro")

    response = change(api, org, "pro")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "plan_unchanged")
    assert not PlanChange.objects.exists()


def test_the_plan_already_pending_is_409_plan_unchanged(api, org, on_plan):
    on_plan("team")
    change(api, org, "pro", key="a")

    response = change(api, org, "pro", key="b")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "plan_unchanged")
    assert PlanChange.objects.count() == 1


def test_a_refused_stripe_write_fails_the_change_and_leaves_nothing_pending(
    api, org, on_plan, stripe_standin, monkeypatch
):
    subscription = on_plan("pro")
    monkeypatch.setattr("stripe.max_network_retries", 0)
    stripe_standin.fail_next("POST", f"/v1/subscriptions/{subscription['id']}", status=400)

    change(api, org, "team")

    planned = PlanChange.objects.get()
    assert planned.status == PlanChangeStatus.FAILED and planned.error
    assert plan_of(org) == "pro"
    assert api.get(f"/api/v1/orgs/{org.public_id}").json()["pending_plan"] is None


def test_stripe_unavailable_is_retried_by_the_outbox(api, org, on_plan, stripe_standin, monkeypatch):
    subscription = on_plan("pro")
    monkeypatch.setattr("stripe.max_network_retries", 0)
    stripe_standin.fail_next("POST", f"/v1/subscriptions/{subscription['id']}", status=503)

    change(api, org, "team")
    assert plan_of(org) == "pro"
    assert PlanChange.objects.get().status == PlanChangeStatus.PENDING

    with time_machine.travel(NOW.replace(hour=12), tick=False):
        process_outbox()

    assert plan_of(org) == "team"
    assert PlanChange.objects.get().status == PlanChangeStatus.DONE


def test_a_plain_member_may_not(api, org, on_plan, stripe_standin):
    on_plan("pro")

    response = change(api, org, "team", user_id=MEMBER)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_role")
    assert not PlanChange.objects.exists()


def test_an_outsider_may_not(api, org, other_org, on_plan):
    on_plan("pro")

    response = change(api, org, "team", user_id=OUTSIDER)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")
    assert not PlanChange.objects.exists()


def test_another_orgs_id_in_the_path_changes_only_that_org(api, org, other_org, on_plan):
    on_plan("pro")

    response = change(api, other_org, "team")  # OWNER is no member of other_org

    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")
    assert plan_of(org) == "pro" and not PlanChange.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"plan": "gold", "user_id": OWNER, "idempotency_key": "k"}, "invalid_request"),
        ({"plan": "team", "user_id": OWNER}, "invalid_request"),
        ({"plan": "team", "user_id": OWNER, "idempotency_key": "k", "when": "now"}, "unknown_field"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(api, org, on_plan, body, code):
    on_plan("pro")

    response = api.post(url(org), body, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert not PlanChange.objects.exists()


def test_billing_admins_change_plans_from_the_org_page_with_a_reason(client, org, on_plan, stripe_standin):
    on_plan("pro")
    client.force_login(staff("bea", BILLING_ADMIN))
    action = reverse("admin:orgs_organization_act", args=[org.pk, "change-plan"])
    form = submitted({"plan": "team", "reason": "customer asked by phone"})

    first = client.post(action, form, follow=True)
    client.post(action, form)  # the same form submitted twice asks once
    process_outbox()

    assert "asked of Stripe" in str(next(iter(first.context["messages"])))
    assert plan_of(org) == "team"
    entry = AuditEntry.objects.get(org=org, action="billing.plan_change_requested")
    assert (entry.reason, entry.actor_user.username) == ("customer asked by phone", "bea")
    assert PlanChange.objects.count() == 1
    page = client.get(reverse("admin:orgs_organization_change", args=[org.pk])).content.decode()
    assert "Change plan" in page and "customer asked by phone" in page  # the action and the change


def test_support_may_not_change_plans(client, org, on_plan):
    on_plan("pro")
    client.force_login(staff("sam", SUPPORT))

    action = reverse("admin:orgs_organization_act", args=[org.pk, "change-plan"])
    response = client.post(action, submitted({"plan": "team", "reason": "x"}))

    assert response.status_code == 403 and not PlanChange.objects.exists()

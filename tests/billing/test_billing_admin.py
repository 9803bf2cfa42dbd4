import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from djstripe.models import Customer

from billing.models import BillingAccount, SuspensionSource
from orgs.models import AuditEntry, ProductAPIKey
from orgs.staff import BILLING_ADMIN, SUPPORT
from tests.billing.conftest import deliver, subscribe
from tests.conftest import staff, submitted

pytestmark = pytest.mark.django_db


def staff_client(client, name, group):
    client.force_login(staff(name, group))
    return client


def act(org, action):
    return reverse("admin:orgs_organization_act", args=[org.pk, action])


def test_support_suspends_and_lifts_with_a_reason(client, org):
    support = staff_client(client, "sam", SUPPORT)

    support.post(act(org, "suspend"), submitted({"reason": "chargeback under review"}))
    account = BillingAccount.objects.get(org=org)
    assert (account.suspension_source, account.suspension_reason) == (
        SuspensionSource.MANUAL,
        "chargeback under review",
    )

    support.post(act(org, "lift-suspension"), submitted({"reason": "cleared"}))

    assert BillingAccount.objects.get(org=org).suspended_at is None
    assert [e.actor_user.username for e in AuditEntry.objects.filter(org=org, category="suspension")] == [
        "sam",
        "sam",
    ]


def test_support_may_not_resync(client, org):
    assert staff_client(client, "sam", SUPPORT).post(act(org, "resync"), submitted({})).status_code == 403


def test_billing_admin_resyncs_an_org_from_stripe(client, org, customer, stripe_standin, stripe_catalog):
    subscribe(stripe_standin, org, stripe_catalog["team"])
    stripe_standin.add_invoice(
        customer, status="open", lines=[(stripe_catalog["team"].stripe_price_id, 19900)]
    )

    response = staff_client(client, "bea", BILLING_ADMIN).post(act(org, "resync"), submitted({}), follow=True)

    assert "plan team, 1 invoices read" in str(next(iter(response.context["messages"])))
    account = BillingAccount.objects.get(org=org)
    assert (account.plan.name, account.payment_status) == ("team", "past_due")


def test_the_org_page_lists_invoices_with_their_kind(
    client, org, customer, stripe_standin, stripe_catalog, post_webhook
):
    invoice = stripe_standin.add_invoice(
        customer, lines=[(stripe_catalog["pro"].stripe_price_id, 4900)], number="ACME-0001"
    )
    deliver(stripe_standin, post_webhook, "invoice.payment_failed", invoice["id"])

    page = staff_client(client, "sam", SUPPORT).get(reverse("admin:orgs_organization_change", args=[org.pk]))

    html = page.content.decode()
    assert "ACME-0001" in html and "<td>plan</td>" in html and "$49.00" in html
    assert f"{invoice['id']} (plan, since" in html  # the open failure on the billing account


def test_rejected_webhooks_are_listed_for_staff(
    client, post_webhook, stripe_standin, customer, stripe_catalog
):
    invoice = stripe_standin.add_invoice(customer, lines=[(stripe_catalog["pro"].stripe_price_id, 4900)])
    post_webhook(stripe_standin.event("invoice.paid", invoice["id"]), secret="whsec_wrong")

    page = staff_client(client, "sam", SUPPORT).get(reverse("admin:billing_rejectedwebhook_changelist"))

    assert page.status_code == 200 and "invalid signature" in page.content.decode()


def test_stripe_data_is_read_only_even_for_a_superuser(client, customer, admin_user):
    client.force_login(admin_user)
    row = Customer.objects.get(id=customer)

    change = client.get(reverse("admin:djstripe_customer_change", args=[row.djstripe_id]))
    add = client.get(reverse("admin:djstripe_customer_add"))
    delete = client.post(reverse("admin:djstripe_customer_delete", args=[row.djstripe_id]), {"post": "yes"})

    assert change.status_code == 200 and "Save" not in change.content.decode().split("submit-row")[-1][:400]
    assert (add.status_code, delete.status_code) == (403, 403)
    assert Customer.objects.filter(id=customer).exists()


def test_a_new_api_key_is_shown_once_on_the_page_never_in_a_message(client, admin_user, product):
    client.force_login(admin_user)
    url = reverse("admin:orgs_product_act", args=[product.pk, "issue-key"])

    form = submitted({"name": "red production"})
    response = client.post(url, form)
    again = client.post(url, form, follow=True)  # the same form sent twice: one key, never shown again

    assert response.status_code == 200
    key = response.context["result"].secret
    assert ProductAPIKey.objects.filter(name="red production").count() == 1
    assert key not in again.content.decode() and "already submitted" in again.content.decode()
    assert key.startswith(ProductAPIKey.objects.get(name="red production").prefix)
    assert key in response.content.decode()
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert key not in str(response.cookies) and not list(get_messages(response.wsgi_request))
    assert key not in client.get(reverse("admin:orgs_product_change", args=[product.pk])).content.decode()

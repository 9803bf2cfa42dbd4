import pytest
from djstripe.models import Customer, Invoice, Subscription

from billing.exceptions import OrgHasActiveBilling
from billing.services.accounts import soft_delete_organization
from orgs.models import AuditEntry, Organization
from orgs.services.audit import Actor
from orgs.services.organizations import restore_organization

pytestmark = pytest.mark.django_db
STAFF = Actor.system("tests")


def test_it_hides_the_org_and_restores_it(org):
    soft_delete_organization(org=org, actor=STAFF, reason="customer asked")
    soft_delete_organization(org=org, actor=STAFF, reason="customer asked")  # a second time: no-op

    assert not Organization.live.filter(pk=org.pk).exists()
    assert Organization.objects.filter(pk=org.pk).exists()  # the default manager is unfiltered
    assert AuditEntry.objects.filter(org=org, action="organization.deleted").count() == 1

    restore_organization(org=org, actor=STAFF, reason="mistake")
    restore_organization(org=org, actor=STAFF, reason="mistake")

    assert Organization.live.filter(pk=org.pk).exists()
    assert AuditEntry.objects.filter(org=org, action="organization.restored").count() == 1


@pytest.fixture
def customer(org):
    return Customer.objects.create(id="cus_test1", subscriber=org, livemode=False)


def test_an_active_subscription_blocks_it(org, customer):
    Subscription.objects.create(
        id="sub_test1", customer=customer, livemode=False, stripe_data={"status": "active"}
    )

    with pytest.raises(OrgHasActiveBilling) as raised:
        soft_delete_organization(org=org, actor=STAFF, reason="closing")

    assert raised.value.status == 409 and raised.value.code == "org_has_active_billing"
    assert raised.value.details["subscriptions"] == ["sub_test1"]
    assert Organization.live.filter(pk=org.pk).exists()


def test_an_open_invoice_blocks_it(org, customer):
    Invoice.objects.create(id="in_test1", customer=customer, livemode=False, stripe_data={"status": "open"})

    with pytest.raises(OrgHasActiveBilling):
        soft_delete_organization(org=org, actor=STAFF, reason="closing")


def test_a_canceled_subscription_and_paid_invoices_do_not(org, customer):
    Subscription.objects.create(
        id="sub_old", customer=customer, livemode=False, stripe_data={"status": "canceled"}
    )
    Invoice.objects.create(id="in_paid", customer=customer, livemode=False, stripe_data={"status": "paid"})

    soft_delete_organization(org=org, actor=STAFF, reason="closing")

    assert not Organization.live.filter(pk=org.pk).exists()

"""Organizations as billing sees them: opened with a billing account, deleted only when settled."""

from django.db import transaction
from djstripe.models import Invoice, Subscription

from billing.exceptions import OrgHasActiveBilling
from billing.models import BillingAccount, CreditBalance
from billing.selectors import default_plan
from billing.services.allowances import grant_allowance
from billing.subscriptions import BILLING_STATUSES
from orgs.models import Organization, Role
from orgs.services.audit import Actor
from orgs.services.memberships import upsert_membership
from orgs.services.organizations import create_organization
from orgs.services.organizations import soft_delete_organization as orgs_soft_delete


def open_organization(
    *,
    name: str,
    billing_email: str,
    slug: str | None = None,
    personal: bool = False,
    owner_user_id: str | None = None,
    owner_email: str = "",
    actor: Actor,
) -> Organization:
    """Create an org, its owner, its billing account (the default plan, payment ok), its credit balance
    and this month's allowance, in one transaction.

    The one way to create an organization. Not idempotent: a taken slug raises SlugTaken.
    """
    with transaction.atomic():
        org = create_organization(
            name=name, billing_email=billing_email, slug=slug, personal=personal, actor=actor
        )
        BillingAccount.objects.create(org=org, plan=default_plan())
        CreditBalance.objects.create(org=org)
        grant_allowance(org_id=org.pk, actor=actor)
        if owner_user_id:
            upsert_membership(
                org=org, user_id=owner_user_id, role=Role.OWNER, email=owner_email or None, actor=actor
            )
    return org


def soft_delete_organization(*, org: Organization, actor: Actor, reason: str) -> Organization:
    """Soft-delete an org that has no live subscription and no open invoice; idempotent."""
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=org.pk)
        live_subscriptions = Subscription.objects.filter(
            customer__subscriber=org, stripe_data__status__in=sorted(BILLING_STATUSES)
        )
        open_invoices = Invoice.objects.filter(customer__subscriber=org, stripe_data__status="open")
        if org.is_live and (live_subscriptions.exists() or open_invoices.exists()):
            raise OrgHasActiveBilling(
                details={
                    "subscriptions": sorted(live_subscriptions.values_list("id", flat=True)),
                    "open_invoices": sorted(open_invoices.values_list("id", flat=True)),
                }
            )
        return orgs_soft_delete(org=org, actor=actor, reason=reason)

"""Reads for billing state."""

from billing.models import BillingAccount, Plan
from orgs.exceptions import OrgNotFound
from orgs.models import Organization


def seat_limit(org: Organization) -> int | None:
    """The seat limit of the org's plan (None: unlimited). Wired into orgs by ORGS_SEAT_LIMIT."""
    return Plan.objects.filter(accounts__org=org).values_list("seat_limit", flat=True).get()


def get_billing_account(org: Organization) -> BillingAccount:
    return BillingAccount.objects.select_related("plan").get(org=org)


def get_live_org_with_account(public_id: str) -> Organization:
    """The live org with its billing account and plan loaded, or OrgNotFound."""
    org = Organization.live.select_related("billing_account__plan").filter(public_id=public_id).first()
    if org is None:
        raise OrgNotFound(details={"org_id": public_id})
    return org

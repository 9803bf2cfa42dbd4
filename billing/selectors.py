"""Reads for billing state."""

from decimal import Decimal

from django.db.models import DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from billing.entitlements import EntitlementState
from billing.exceptions import UnknownMetric
from billing.models import (
    BillingAccount,
    CreditBalance,
    CreditGrant,
    Hold,
    HoldState,
    LedgerEntry,
    Metric,
    MetricPrice,
    Plan,
)
from billing.pricing import PriceBook, PriceVersion
from orgs.exceptions import OrgNotFound
from orgs.models import Membership, Organization, Product

CREDITS = DecimalField(max_digits=20, decimal_places=6)


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


def _credits_sum(queryset, column: str):
    total = queryset.values("org_id").annotate(total=Sum(column)).values("total")
    return Coalesce(Subquery(total), Value(Decimal(0)), output_field=CREDITS)


def active_holds(org_id, *, now):
    """Holds that count against the balance: active and not yet past their expiry."""
    return Hold.objects.filter(org_id=org_id, state=HoldState.ACTIVE, expires_at__gt=now)


def expired_unposted_grants(org_id, *, now):
    return CreditGrant.objects.filter(org_id=org_id, remaining__gt=0, expires_at__lte=now)


def entitlement_state(
    *, org_id: str, product: Product, user_id: str, metric: str, now=None
) -> EntitlementState:
    """Membership, billing state, price in force and available balance, in one query.

    Raises OrgNotFound, then UnknownMetric: the first two rows of the decision table.
    """
    now = now or timezone.now()
    prices = MetricPrice.objects.filter(
        metric__product=product, metric__key=metric, effective_from__lte=now
    ).order_by("-effective_from")
    row = (
        Organization.live.filter(public_id=org_id)
        .annotate(
            role=Subquery(Membership.objects.filter(org=OuterRef("pk"), user_id=user_id).values("role")[:1]),
            plan_name=F("billing_account__plan__name"),
            overage_allowed=F("billing_account__plan__overage_allowed"),
            payment_status=F("billing_account__payment_status"),
            suspended_at=F("billing_account__suspended_at"),
            posted=F("credit_balance__posted"),
            held=_credits_sum(active_holds(OuterRef("pk"), now=now), "cost"),
            expired_unposted=_credits_sum(expired_unposted_grants(OuterRef("pk"), now=now), "remaining"),
            metric_id=Subquery(Metric.objects.filter(product=product, key=metric).values("pk")[:1]),
            credits_per_unit=Subquery(prices.values("credits_per_unit")[:1]),
        )
        .only("id", "public_id")
        .first()
    )
    if row is None:
        raise OrgNotFound(details={"org_id": org_id})
    if row.metric_id is None or row.credits_per_unit is None:
        raise UnknownMetric(details={"metric": metric, "product": product.slug})
    return EntitlementState(
        org=row,
        role=row.role,
        plan=row.plan_name,
        overage_allowed=row.overage_allowed,
        payment_status=row.payment_status,
        suspended=row.suspended_at is not None,
        posted=row.posted,
        held=row.held,
        expired_unposted=row.expired_unposted,
        metric_id=row.metric_id,
        credits_per_unit=row.credits_per_unit,
    )


def balances(org: Organization, *, now=None) -> tuple[Decimal, Decimal]:
    """(available, posted): available = posted − active holds − credits of grants already expired."""
    now = now or timezone.now()
    posted = org.credit_balance.posted if hasattr(org, "credit_balance") else Decimal(0)
    held = active_holds(org.pk, now=now).aggregate(total=Sum("cost"))["total"] or Decimal(0)
    stale = expired_unposted_grants(org.pk, now=now).aggregate(total=Sum("remaining"))["total"] or Decimal(0)
    return posted - held - stale, posted


def live_grants(org: Organization, *, now=None):
    now = now or timezone.now()
    return (
        CreditGrant.objects.filter(org=org, remaining__gt=0)
        .exclude(expires_at__lte=now)
        .order_by(F("expires_at").asc(nulls_last=True), "id")
    )


def price_book(product: Product) -> PriceBook:
    """Every price version of the product's metrics, to price a batch without a query per event."""
    versions: dict[str, list[PriceVersion]] = {}
    for price in MetricPrice.objects.filter(metric__product=product).select_related("metric"):
        versions.setdefault(price.metric.key, []).append(
            PriceVersion(price.pk, price.credits_per_unit, price.effective_from)
        )
    return PriceBook(versions)


def current_prices(product: Product, *, now=None):
    """The product's metrics with the price in force now (the credit policy products read)."""
    now = now or timezone.now()
    in_force = MetricPrice.objects.filter(metric=OuterRef("pk"), effective_from__lte=now).order_by(
        "-effective_from"
    )
    return (
        Metric.objects.filter(product=product)
        .annotate(credits_per_unit=Subquery(in_force.values("credits_per_unit")[:1]))
        .order_by("key")
    )


def drifted_balances():
    """Balances that disagree with their ledger, or whose live grants do not add up to the positive
    part of the balance. One statement, so one snapshot: a concurrent write is seen whole or not."""
    ledger_sum = LedgerEntry.objects.filter(org_id=OuterRef("org_id"))
    remaining = CreditGrant.objects.filter(org_id=OuterRef("org_id"), remaining__gt=0)
    return (
        CreditBalance.objects.annotate(
            ledger_sum=_credits_sum(ledger_sum, "amount"),
            grants_remaining=_credits_sum(remaining, "remaining"),
        )
        .filter(~Q(posted=F("ledger_sum")) | ~Q(grants_remaining=Greatest(F("posted"), Value(Decimal(0)))))
        .order_by("org_id")
    )

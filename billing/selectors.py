"""Reads for billing state."""

from decimal import Decimal

from django.db import connection
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
from orgs.api.auth import PresentedKey, authenticate_key, verified_product
from orgs.exceptions import OrgNotFound
from orgs.models import Organization, Product, ProductAPIKey

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


# The hot path of every product: one statement, written once. Built with the ORM it costs ~8 ms
# of Python per request to assemble (bench/check); the query itself runs in well under 1 ms.
_STATE = """
SELECT o.id,
       (SELECT m.role FROM orgs_membership m WHERE m.org_id = o.id AND m.user_id = %(user_id)s),
       p.name, p.overage_allowed, a.payment_status, a.suspended_at, b.posted,
       COALESCE((SELECT SUM(h.cost) FROM billing_hold h
                 WHERE h.org_id = o.id AND h.state = 'active' AND h.expires_at > %(now)s), 0),
       COALESCE((SELECT SUM(g.remaining) FROM billing_creditgrant g
                 WHERE g.org_id = o.id AND g.remaining > 0 AND g.expires_at <= %(now)s), 0),
       price.metric_id, price.credits_per_unit
FROM orgs_organization o
JOIN billing_billingaccount a ON a.org_id = o.id
JOIN billing_plan p ON p.id = a.plan_id
JOIN billing_creditbalance b ON b.org_id = o.id
LEFT JOIN (
    SELECT mt.id AS metric_id, mp.credits_per_unit
    FROM billing_metric mt JOIN billing_metricprice mp ON mp.metric_id = mt.id
    WHERE mt.product_id = {product} AND mt.key = %(metric)s AND mp.effective_from <= %(now)s
    ORDER BY mp.effective_from DESC LIMIT 1
) price ON TRUE
WHERE o.public_id = %(org_id)s AND o.deleted_at IS NULL
"""
_ENTITLEMENT_STATE = _STATE.replace("{product}", "%(product_id)s")

# The entitlement check verifies the API key in the same round trip as its read: the key row
# (found by its prefix) with the state for that key's product. A trivial authenticated request
# makes one round trip too, so the check costs about what it does (bench/check).
_KEY_AND_ENTITLEMENT_STATE = """
SELECT k.id, k.hashed_key, k.expiry_date, pr.id, pr.slug, s.*
FROM orgs_productapikey k
JOIN orgs_product pr ON pr.id = k.product_id
LEFT JOIN LATERAL ({state}) s ON TRUE
WHERE k.prefix = %(prefix)s AND NOT k.revoked
""".replace("{state}", _STATE.replace("{product}", "pr.id"))


def _credits(value) -> Decimal | None:
    # PostgreSQL answers Decimal; SQLite (the embedded default) may answer float or int.
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.000001"))


def _state_from_row(row, *, org_id: str, metric: str, product: Product) -> EntitlementState:
    (
        org_pk,
        role,
        plan,
        overage_allowed,
        payment_status,
        suspended_at,
        posted,
        held,
        stale,
        metric_id,
        price,
    ) = row
    if org_pk is None:
        raise OrgNotFound(details={"org_id": org_id})
    if metric_id is None or price is None:
        raise UnknownMetric(details={"metric": metric, "product": product.slug})
    return EntitlementState(
        org_pk=org_pk,
        role=role,
        plan=plan,
        overage_allowed=bool(overage_allowed),
        payment_status=payment_status,
        suspended=suspended_at is not None,
        posted=_credits(posted),
        held=_credits(held),
        expired_unposted=_credits(stale),
        metric_id=metric_id,
        credits_per_unit=_credits(price),
    )


def entitlement_state(
    *, org_id: str, product: Product, user_id: str, metric: str, now=None
) -> EntitlementState:
    """Membership, billing state, price in force and available balance, in one query.

    Raises OrgNotFound, then UnknownMetric: the first two rows of the decision table.
    """
    params = {"org_id": org_id, "user_id": user_id, "product_id": product.pk, "metric": metric}
    with connection.cursor() as cursor:
        cursor.execute(_ENTITLEMENT_STATE, {**params, "now": now or timezone.now()})
        row = cursor.fetchone()
    return _state_from_row(row or (None,) * 11, org_id=org_id, metric=metric, product=product)


def keyed_entitlement_state(
    *, presented: PresentedKey, org_id: str, user_id: str, metric: str, now=None
) -> tuple[Product, EntitlementState]:
    """Authenticate the presented key and read the entitlement state for its product, in one round
    trip; returns (product, state). Raises AuthenticationFailed, then OrgNotFound, UnknownMetric."""
    if connection.vendor != "postgresql":  # the embedded default has no LATERAL: two queries
        product = authenticate_key(presented)
        return product, entitlement_state(
            org_id=org_id, product=product, user_id=user_id, metric=metric, now=now
        )
    params = {"prefix": presented.prefix, "org_id": org_id, "user_id": user_id, "metric": metric}
    with connection.cursor() as cursor:
        cursor.execute(_KEY_AND_ENTITLEMENT_STATE, {**params, "now": now or timezone.now()})
        row = cursor.fetchone()
    api_key = None
    if row is not None:
        key_id, hashed_key, expiry_date, product_id, product_slug = row[:5]
        api_key = ProductAPIKey(
            id=key_id,
            prefix=presented.prefix,
            hashed_key=hashed_key,
            expiry_date=expiry_date,
            product=Product(id=product_id, slug=product_slug),
        )
    product = verified_product(presented, api_key)
    return product, _state_from_row(row[5:], org_id=org_id, metric=metric, product=product)


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

"""Reads for billing state."""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import connection
from django.db.models import DecimalField, F, Func, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from billing.credits import as_credits
from billing.entitlements import EntitlementState, available_balance
from billing.exceptions import UnknownMetric
from billing.models import (
    AllowanceClaim,
    BillingAccount,
    ClaimStatus,
    CreditBalance,
    CreditGrant,
    CreditPurchase,
    Hold,
    HoldState,
    LedgerEntry,
    Metric,
    MetricPrice,
    PaymentStatus,
    Plan,
    PlanChange,
    PlanChangeStatus,
)
from billing.periods import month_of
from billing.pricing import PriceBook, PriceVersion
from orgs.exceptions import OrgNotFound
from orgs.models import Organization, Product, ProductAPIKey

CREDITS = DecimalField(max_digits=20, decimal_places=6)


def seat_limit(org_id: int) -> int | None:
    """The seat limit of the org's plan (None: unlimited); orgs asks through core.registries.seat_limits."""
    return Plan.objects.filter(accounts__org_id=org_id).values_list("seat_limit", flat=True).get()


def get_live_org_with_account(public_id: str) -> Organization:
    """The live org with its billing account and plan loaded, or OrgNotFound."""
    org = Organization.live.select_related("billing_account__plan").filter(public_id=public_id).first()
    if org is None:
        raise OrgNotFound(details={"org_id": public_id})
    return org


def pending_plan_change(org: Organization) -> PlanChange | None:
    """The org's plan change still waiting for Stripe (the newest; a new one supersedes the others)."""
    return (
        PlanChange.objects.filter(org=org, status=PlanChangeStatus.PENDING)
        .select_related("to_plan")
        .order_by("-pk")
        .first()
    )


def credit_purchases(org: Organization, *, limit: int = 50) -> QuerySet[CreditPurchase]:
    """The org's credit purchases that reached Stripe, newest first."""
    return (
        CreditPurchase.objects.filter(org=org).exclude(stripe_session_id="").select_related("grant")[:limit]
    )


# --- The monthly allowance due ------------------------------------------------------------------


def allowance_top_up(*, plan_credits: Decimal, claimed_credits: Decimal, plan_claimed: bool) -> Decimal:
    """What the month's allowance still owes an org for its allowance plan: nothing once that plan's
    claim exists; else the plan's credits beyond what the month's claims granted (a first claim gives
    the plan's amount, an upgrade the difference, a poorer plan nothing): one allowance per month."""
    return Decimal(0) if plan_claimed else max(plan_credits - claimed_credits, Decimal(0))


@dataclass(frozen=True)
class AllowanceDue:
    account: BillingAccount
    plan: Plan  # the plan whose allowance the org receives this month
    top_up: Decimal  # the credits still to grant (0: nothing to do)
    plan_claimed: bool
    held: Decimal  # the costs of the org's active holds (a debit's credit events need them)


def default_plan() -> Plan:
    """The plan of an org without a subscription (the catalog's `default = true`; `free` by default)."""
    return Plan.objects.default()


def allowance_plan(account: BillingAccount, *, default: Plan | None = None) -> Plan:
    """The plan whose allowance the org receives: its own, or the default plan's while a payment is
    due (past_due, and blocked, which is worse)."""
    if account.payment_status != PaymentStatus.OK:
        return default or default_plan()
    return account.plan


def allowances_due(org_ids: Collection[int], *, now: datetime) -> dict[int, AllowanceDue]:
    """For each org, the allowance its month (of `now`) still owes it; three queries at most."""
    # `held`: the org's active holds, read in the same statement (a debit's credit events need it).
    held = _credits_sum(
        Hold.objects.filter(org_id=OuterRef("org_id"), state=HoldState.ACTIVE, expires_at__gt=now), "cost"
    )
    accounts = list(
        BillingAccount.objects.filter(org_id__in=org_ids).select_related("plan").annotate(held=held)
    )
    default = None
    if any(account.payment_status != PaymentStatus.OK for account in accounts):
        default = default_plan()
    claimed: dict[int, Decimal] = {}
    claimed_plans: set[tuple[int, int]] = set()
    granted = AllowanceClaim.objects.filter(
        org_id__in=org_ids, month=month_of(now), status=ClaimStatus.GRANTED
    )
    for org_id, plan_id, credits in granted.values_list("org_id", "plan_id", "credits"):
        claimed[org_id] = claimed.get(org_id, Decimal(0)) + credits
        claimed_plans.add((org_id, plan_id))
    due: dict[int, AllowanceDue] = {}
    for account in accounts:
        plan = allowance_plan(account, default=default)
        plan_claimed = (account.org_id, plan.pk) in claimed_plans
        top_up = allowance_top_up(
            plan_credits=plan.monthly_credits,
            claimed_credits=claimed.get(account.org_id, Decimal(0)),
            plan_claimed=plan_claimed,
        )
        due[account.org_id] = AllowanceDue(
            account=account,
            plan=plan,
            top_up=top_up,
            plan_claimed=plan_claimed,
            held=account.held,  # annotated in the query above
        )
    return due


def _credits_sum(queryset: QuerySet[Any], column: str) -> Func:
    total = queryset.values("org_id").annotate(total=Sum(column)).values("total")
    return Coalesce(Subquery(total), Value(Decimal(0)), output_field=CREDITS)


def active_holds(org_id: int, *, now: datetime) -> QuerySet[Hold]:
    """Holds that count against the balance: active and not yet past their expiry."""
    return Hold.objects.filter(org_id=org_id, state=HoldState.ACTIVE, expires_at__gt=now)


def expired_unposted_grants(org_id: int, *, now: datetime) -> QuerySet[CreditGrant]:
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
       price.metric_id, price.credits_per_unit, b.billed_debt,
       ap.monthly_credits,
       COALESCE((SELECT SUM(c.credits) FROM billing_allowanceclaim c
                 WHERE c.org_id = o.id AND c.month = %(month)s AND c.status = 'granted'), 0),
       EXISTS (SELECT 1 FROM billing_allowanceclaim c
               WHERE c.org_id = o.id AND c.month = %(month)s AND c.plan_id = ap.id AND c.status = 'granted'),
       b.monthly_overage_cap,
       CASE WHEN b.overage_month = %(month)s THEN b.month_overage ELSE 0 END
FROM orgs_organization o
JOIN billing_billingaccount a ON a.org_id = o.id
JOIN billing_plan p ON p.id = a.plan_id
-- The plan whose allowance the org receives (billing.selectors.allowance_plan).
JOIN billing_plan ap ON ap.id = CASE WHEN a.payment_status = 'ok' THEN a.plan_id
                                     ELSE (SELECT dp.id FROM billing_plan dp WHERE dp.is_default) END
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
_STATE_COLUMNS = 17

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


def _state_from_row(row: Sequence[Any], *, org_id: str, metric: str, product: Product) -> EntitlementState:
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
        billed_debt,
        plan_credits,
        claimed_credits,
        plan_claimed,
        spend_cap,
        month_overage,
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
        posted=as_credits(posted),
        held=as_credits(held),
        expired_unposted=as_credits(stale),
        metric_id=metric_id,
        credits_per_unit=as_credits(price),
        billed_debt=as_credits(billed_debt),
        allowance_due=allowance_top_up(
            plan_credits=as_credits(plan_credits),
            claimed_credits=as_credits(claimed_credits),
            plan_claimed=bool(plan_claimed),
        ),
        spend_cap=as_credits(spend_cap) if spend_cap is not None else None,
        month_overage=as_credits(month_overage),
    )


def _with_time(params: dict[str, Any], now: datetime | None) -> dict[str, Any]:
    now = now or timezone.now()
    return {**params, "now": now, "month": month_of(now)}


def entitlement_state(
    *, org_id: str, product: Product, user_id: str, metric: str, now: datetime | None = None
) -> EntitlementState:
    """Membership, billing state, price in force and available balance, in one query.

    Raises OrgNotFound, then UnknownMetric: the first two rows of the decision table.
    """
    params = {"org_id": org_id, "user_id": user_id, "product_id": product.pk, "metric": metric}
    with connection.cursor() as cursor:
        cursor.execute(_ENTITLEMENT_STATE, _with_time(params, now))
        row = cursor.fetchone()
    return _state_from_row(row or (None,) * _STATE_COLUMNS, org_id=org_id, metric=metric, product=product)


def key_and_entitlement_state(
    *, prefix: str, org_id: str, user_id: str, metric: str, now: datetime | None = None
) -> tuple[ProductAPIKey | None, Callable[[Product], EntitlementState]]:
    """The unrevoked API key row with this prefix (None: no such key) and, for the product the caller
    verifies that key belongs to, the entitlement state; one round trip on PostgreSQL. Reading the
    state raises OrgNotFound, then UnknownMetric; the caller checks the key first (401 comes first)."""
    if connection.vendor != "postgresql":  # the embedded default has no LATERAL: two queries
        api_key = ProductAPIKey.objects.select_related("product").filter(prefix=prefix, revoked=False).first()
        return api_key, lambda product: entitlement_state(
            org_id=org_id, product=product, user_id=user_id, metric=metric, now=now
        )
    params = {"prefix": prefix, "org_id": org_id, "user_id": user_id, "metric": metric}
    with connection.cursor() as cursor:
        cursor.execute(_KEY_AND_ENTITLEMENT_STATE, _with_time(params, now))
        row = cursor.fetchone()
    if row is None:
        return None, lambda product: _state_from_row(
            (None,) * _STATE_COLUMNS, org_id=org_id, metric=metric, product=product
        )
    key_id, hashed_key, expiry_date, product_id, product_slug = row[:5]
    api_key = ProductAPIKey(
        id=key_id,
        prefix=prefix,
        hashed_key=hashed_key,
        expiry_date=expiry_date,
        product=Product(id=product_id, slug=product_slug),
    )
    return api_key, lambda product: _state_from_row(row[5:], org_id=org_id, metric=metric, product=product)


def balances(org: Organization, *, now: datetime | None = None) -> tuple[Decimal, Decimal]:
    """(available, posted), as the entitlement check counts them (billing.entitlements.available_balance)."""
    now = now or timezone.now()
    balance = CreditBalance.objects.filter(org=org).first() or CreditBalance(org=org)
    held = active_holds(org.pk, now=now).aggregate(total=Sum("cost"))["total"] or Decimal(0)
    stale = expired_unposted_grants(org.pk, now=now).aggregate(total=Sum("remaining"))["total"] or Decimal(0)
    due = allowances_due([org.pk], now=now).get(org.pk)
    available = available_balance(
        posted=balance.posted,
        billed_debt=balance.billed_debt,
        allowance_due=due.top_up if due else Decimal(0),
        held=held,
        expired_unposted=stale,
    )
    return available, balance.posted


def live_grants(org: Organization, *, now: datetime | None = None) -> QuerySet[CreditGrant]:
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


def current_prices(product: Product, *, now: datetime | None = None) -> QuerySet[Metric]:
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


class _Sums(TypedDict):
    ledger_sum: Decimal
    grants_remaining: Decimal


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    DriftedBalance = WithAnnotations[CreditBalance, _Sums]


def drifted_balances() -> "QuerySet[DriftedBalance]":
    """Balances that disagree with their ledger, whose live grants do not add up to the positive part
    of the balance, or whose billed debt exceeds the debt. One statement, so one snapshot: a
    concurrent write is seen whole or not."""
    ledger_sum = LedgerEntry.objects.filter(org_id=OuterRef("org_id"))
    remaining = CreditGrant.objects.filter(org_id=OuterRef("org_id"), remaining__gt=0)
    return (
        CreditBalance.objects.annotate(
            ledger_sum=_credits_sum(ledger_sum, "amount"),
            grants_remaining=_credits_sum(remaining, "remaining"),
        )
        .filter(
            ~Q(posted=F("ledger_sum"))
            | ~Q(grants_remaining=Greatest(F("posted"), Value(Decimal(0))))
            # Only a debt can be billed debt.
            | Q(billed_debt__gt=Greatest(-F("posted"), Value(Decimal(0))))
        )
        .order_by("org_id")
    )

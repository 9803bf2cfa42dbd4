"""billing's part of the org list: plan, payment status, suspended and available balance as columns,
a filter for each, and Stripe customer ids (cus_…) in the search box.

The balance column is read for the page's rows in one batch (prepare_rows: five queries for 50 rows),
never per row; the filters read indexed columns of the account and balance rows, so the list stays
fast at 100,000 orgs (bench/admin.py).
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from django.utils.html import format_html

from billing.entitlements import available_balance
from billing.models import CreditBalance, CreditGrant, Hold, HoldState, PaymentStatus, Plan, SuspensionSource
from billing.selectors import allowances_due

AVAILABLE = "_billing_available"  # the attribute prepare_rows sets on each org of the page


@admin.display(description="Suspended", ordering="billing_account__suspended_at")
def suspended(org: Any) -> str:
    account = org.billing_account
    if account.suspended_at is None:
        return "—"
    return format_html(
        "<strong style='color:#ba2121'>{}</strong> since {}",
        account.get_suspension_source_display(),
        f"{account.suspended_at:%Y-%m-%d}",
    )


@admin.display(description="Available credits")
def available(org: Any) -> Any:
    value = getattr(org, AVAILABLE, None)
    if value is None:
        return "—"
    text = f"{value:f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text  # trailing zeros trimmed
    return format_html("<span style='color:#ba2121'>{}</span>", text) if value <= 0 else text


def prepare_rows(orgs: Sequence[Any]) -> None:
    """Each org's available balance, as the entitlement check counts it, for a page of the list."""
    ids = [org.pk for org in orgs]
    if not ids:
        return
    now = timezone.now()
    balances = {row.org_id: row for row in CreditBalance.objects.filter(org_id__in=ids)}
    held = _sums(Hold.objects.filter(org_id__in=ids, state=HoldState.ACTIVE, expires_at__gt=now), "cost")
    stale = _sums(
        CreditGrant.objects.filter(org_id__in=ids, remaining__gt=0, expires_at__lte=now), "remaining"
    )
    due = allowances_due(ids, now=now)
    for org in orgs:
        balance = balances.get(org.pk)
        if balance is None:
            continue
        allowance = due.get(org.pk)
        setattr(
            org,
            AVAILABLE,
            available_balance(
                posted=balance.posted,
                billed_debt=balance.billed_debt,
                allowance_due=allowance.top_up if allowance else Decimal(0),
                held=held.get(org.pk, Decimal(0)),
                expired_unposted=stale.get(org.pk, Decimal(0)),
            ),
        )


def _sums(queryset: QuerySet[Any], column: str) -> dict[int, Decimal]:
    return dict(queryset.values("org_id").annotate(total=Sum(column)).values_list("org_id", "total"))


class PlanFilter(admin.SimpleListFilter):
    title = "plan"
    parameter_name = "plan"

    def lookups(self, request, model_admin):
        return [(plan.name, plan.name) for plan in Plan.objects.order_by("rank")]

    def queryset(self, request, queryset):
        return queryset.filter(billing_account__plan__name=self.value()) if self.value() else queryset


class PaymentStatusFilter(admin.SimpleListFilter):
    title = "payment status"
    parameter_name = "payment"

    def lookups(self, request, model_admin):
        return PaymentStatus.choices

    def queryset(self, request, queryset):
        return queryset.filter(billing_account__payment_status=self.value()) if self.value() else queryset


class SuspendedFilter(admin.SimpleListFilter):
    title = "suspended"
    parameter_name = "suspended"

    def lookups(self, request, model_admin):
        return [("yes", "Suspended"), *SuspensionSource.choices, ("no", "Not suspended")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "yes":
            return queryset.filter(billing_account__suspended_at__isnull=False)
        if value == "no":
            return queryset.filter(billing_account__suspended_at__isnull=True)
        if value in SuspensionSource.values:
            return queryset.filter(billing_account__suspension_source=value)
        return queryset


class BalanceFilter(admin.SimpleListFilter):
    """On the posted balance (the ledger's sum): holds and the month's allowance still due move the
    available balance shown in the column a little either way."""

    title = "posted balance"
    parameter_name = "balance"

    def lookups(self, request, model_admin):
        return [("none", "None left (≤ 0)"), ("negative", "Negative (debt)"), ("some", "Some left (> 0)")]

    def queryset(self, request, queryset):
        conditions = {
            "none": Q(credit_balance__posted__lte=0),
            "negative": Q(credit_balance__posted__lt=0),
            "some": Q(credit_balance__posted__gt=0),
        }
        condition = conditions.get(self.value() or "")
        return queryset.filter(condition) if condition is not None else queryset


def search(term: str) -> Q | None:
    """A Stripe customer id (cus_…) finds the org it bills."""
    if not term.startswith("cus_"):
        return None
    from djstripe.models import Customer

    return Q(pk__in=Customer.objects.filter(id=term).values("subscriber_id"))


FILTERS = (PlanFilter, PaymentStatusFilter, SuspendedFilter, BalanceFilter)
COLUMNS = (suspended, available)

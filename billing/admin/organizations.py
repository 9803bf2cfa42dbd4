"""billing's sections of the organization's admin page: the account, credits, invoices, suspension,
soft delete with the billing check, and opening an org (with its account) from the admin."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing.admin import org_list
from billing.admin.status import render_status
from billing.models import (
    BillingAccount,
    CreditGrant,
    Hold,
    HoldState,
    InvoiceRecord,
    LedgerDrift,
    LedgerEntry,
    PaymentFailure,
)
from billing.selectors import balances
from billing.services.accounts import open_organization, soft_delete_organization
from billing.services.grants import GRANTABLE, grant_credits
from billing.services.payments import resync_org_from_stripe
from billing.services.suspensions import lift_suspension, suspend_organization
from core.admin.actions import ActionForm, ObjectAction, ReasonForm
from core.admin.readonly import ReadOnlyInline, credits_column
from core.admin.sections import Creation, Section, organization_page
from core.admin.timeline import TimelineEntry, history_entries
from core.display import credits_text, money_text
from orgs.models import Organization
from orgs.services.audit import Actor


class BillingAccountInline(ReadOnlyInline):
    model = BillingAccount
    fields = (
        "plan",
        "payment_status",
        "open_failures",
        "overdue_since",
        "suspended_at",
        "suspension_source",
        "suspension_reason",
        "first_paid_at",
    )
    readonly_fields = fields

    @admin.display(description="Open payment failures")
    def open_failures(self, account):
        failures = PaymentFailure.objects.filter(org_id=account.org_id, resolved_at__isnull=True)
        return (
            ", ".join(f"{f.invoice_id} ({f.kind}, since {f.first_failed_at:%Y-%m-%d})" for f in failures)
            or "none"
        )


class LiveGrantInline(ReadOnlyInline):
    model = CreditGrant
    verbose_name_plural = "Credit grants with credits left"
    fields = (
        "public_id",
        "grant_type",
        "amount_shown",
        "remaining_shown",
        "expires_at",
        "created_at",
        "reason",
    )
    readonly_fields = fields
    amount_shown = credits_column("amount")
    remaining_shown = credits_column("remaining")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(remaining__gt=0).order_by("expires_at", "id")


class ActiveHoldInline(ReadOnlyInline):
    model = Hold
    verbose_name_plural = "Active holds"
    fields = ("public_id", "product", "metric", "user_id", "cost_shown", "expires_at")
    readonly_fields = fields
    cost_shown = credits_column("cost")

    def get_queryset(self, request):
        now = timezone.now()
        return (
            super()
            .get_queryset(request)
            .filter(state=HoldState.ACTIVE, expires_at__gt=now)
            .select_related("metric")
        )


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    limit = 50
    verbose_name_plural = "Ledger (latest 50; all in Ledger entries)"
    fields = (
        "created_at",
        "entry_type",
        "amount_shown",
        "covered_shown",
        "overage_shown",
        "balance_after_shown",
        "reference",
    )
    readonly_fields = fields
    amount_shown = credits_column("amount")
    covered_shown = credits_column("covered")
    overage_shown = credits_column("overage")
    balance_after_shown = credits_column("balance_after", "balance after")
    ordering = ["-id"]


class SuspendForm(ReasonForm):
    pass


def _suspend(request, org, data):
    suspend_organization(org=org, reason=data["reason"], actor=Actor.staff(request.user))
    return f"{org.name} is suspended (manual); products get 402 billing_suspended."


def _lift(request, org, data):
    lift_suspension(org=org, reason=data["reason"], actor=Actor.staff(request.user))
    return (
        f"{org.name}'s suspension is lifted. While an automatic reason remains, the daily job suspends again."
    )


def _resync(request, org, data):
    result = resync_org_from_stripe(org=org, actor=Actor.staff(request.user))
    return f"Resynced from Stripe: plan {result['plan']}, {result['invoices']} invoices read."


class OpenOrganizationForm(forms.ModelForm):
    owner_user_id = forms.CharField(max_length=128, required=False, strip=False)
    owner_email = forms.EmailField(required=False)

    class Meta:
        model = Organization
        fields = ["name", "slug", "billing_email", "personal"]


class GrantCreditsForm(ActionForm):
    amount = forms.DecimalField(min_value=0, max_digits=20, decimal_places=6)
    grant_type = forms.ChoiceField(choices=[(t.value, t.label) for t in GRANTABLE])
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    expires_at = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-12-31 23:59. Empty: never.")

    def clean_amount(self):
        if self.cleaned_data["amount"] <= 0:
            raise forms.ValidationError("Grant more than 0 credits.")
        return self.cleaned_data["amount"]

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("An expiry in the future.")
        return expires_at


def _grant(request, org, data):
    # The form's one-time token is also the grant's idempotency key: the same form sent twice is
    # one grant even past the admin's own submission check.
    grant, _ = grant_credits(
        org=org,
        actor=Actor.staff(request.user),
        amount=data["amount"],
        grant_type=data["grant_type"],
        reason=data["reason"],
        expires_at=data["expires_at"],
        idempotency_key=f"admin-form:{data['submission']}",
    )
    return f"Granted {credits_text(grant.amount)} {grant.grant_type} credits to {org.name}."


def _soft_delete(request, org, data):
    soft_delete_organization(org=org, actor=Actor.staff(request.user), reason=data["reason"])
    return f"{org.name} was soft-deleted; it can be restored from this page."


@admin.display(ordering="billing_account__plan__name")
def plan(org):
    return org.billing_account.plan.name


@admin.display(ordering="billing_account__payment_status")
def payment_status(org):
    return org.billing_account.get_payment_status_display()


@admin.display(description="Credits")
def credits(org):
    available, posted = balances(org)
    drift = LedgerDrift.objects.filter(org=org).first()
    return format_html(
        "available <strong>{}</strong> · posted {}{}",
        credits_text(available),
        credits_text(posted),
        format_html(" · <span style='color:#ba2121'>ledger drift found {}</span>", drift.found_at)
        if drift
        else "",
    )


@admin.display(description="Invoices (Stripe)")
def invoices(org):
    from djstripe.models import Invoice

    rows = Invoice.objects.filter(customer__subscriber=org).order_by("-created")[:24]
    if not rows:
        return "No invoices."
    kinds = dict(InvoiceRecord.objects.filter(org=org).values_list("invoice_id", "kind"))
    return format_html(
        "<table><tr><th>invoice</th><th>kind</th><th>status</th><th>amount due</th><th>paid</th>"
        "<th>created</th><th>due</th></tr>{}</table>",
        format_html_join(
            "",
            "<tr><td><a href='{}'>{}</a></td>" + "<td>{}</td>" * 6 + "</tr>",
            (_invoice_row(invoice, kinds) for invoice in rows),
        ),
    )


def _invoice_row(invoice, kinds: dict) -> tuple:
    data = invoice.stripe_data
    return (
        reverse("admin:djstripe_invoice_change", args=[invoice.djstripe_id]),
        data.get("number") or invoice.id,
        kinds.get(invoice.id, "not seen yet"),
        data.get("status", ""),
        money_text(data.get("amount_due"), data.get("currency")),
        money_text(data.get("amount_paid"), data.get("currency")),
        f"{invoice.created:%Y-%m-%d}" if invoice.created else "",
        _date(data.get("due_date")),
    )


def _account_actions() -> list[ObjectAction]:
    return [
        ObjectAction(
            "suspend",
            "Suspend",
            SuspendForm,
            "billing.suspend_organization",
            _suspend,
            applies=lambda org: org.billing_account.suspension_source != "manual",
            group="Billing",
        ),
        ObjectAction(
            "lift-suspension",
            "Lift suspension",
            ReasonForm,
            "billing.suspend_organization",
            _lift,
            applies=lambda org: org.billing_account.suspended_at is not None,
            group="Billing",
        ),
        ObjectAction(
            "resync", "Resync from Stripe", ActionForm, "billing.resync_from_stripe", _resync, group="Billing"
        ),
        ObjectAction(
            "soft-delete",
            "Soft-delete",
            ReasonForm,
            "orgs.soft_delete_organization",
            _soft_delete,
            applies=lambda org: org.deleted_at is None,
        ),
    ]


def _grant_label(request) -> str:
    """True for the one viewing: their own limit, none for those who may grant without one."""
    if request.user.has_perm("billing.grant_unlimited_credits"):
        return "Grant credits"
    return f"Grant credits (up to {credits_text(settings.SUPPORT_CREDIT_GRANT_LIMIT)})"


def _credit_actions() -> list[ObjectAction]:
    return [
        ObjectAction(
            "grant-credits", _grant_label, GrantCreditsForm, "billing.grant_credits", _grant, group="Credits"
        ),
    ]


def _open(request, data: dict) -> Organization:
    return open_organization(
        name=data["name"],
        billing_email=data["billing_email"],
        slug=data["slug"],
        personal=data["personal"],
        owner_user_id=data["owner_user_id"] or None,
        owner_email=data["owner_email"],
        actor=Actor.staff(request.user),
    )


def _billing_timeline(org, limit: int) -> list[TimelineEntry]:
    """The account's and the payment failures' recorded changes (their audit entries are orgs')."""

    def latest(model):
        return model.history.filter(org_id=org.pk).select_related("history_user").order_by("-history_date")

    return [
        *history_entries(latest(BillingAccount)[:limit], label="Billing account"),
        *history_entries(latest(PaymentFailure)[:limit], label="Payment failure"),
    ]


def register_sections() -> None:
    """Called from BillingConfig.ready."""
    organization_page.add(Section("status", order=0, header=render_status))
    organization_page.add(
        Section(
            "billing-account",
            order=10,
            inlines=(BillingAccountInline,),
            fields=(credits, invoices),
            columns=(plan, payment_status, *org_list.COLUMNS),
            select_related=("billing_account__plan",),
            filters=org_list.FILTERS,
            search=org_list.search,
            prepare_rows=org_list.prepare_rows,
            actions=_account_actions,
            timeline=_billing_timeline,
        )
    )
    organization_page.add(
        Section(
            "credits",
            order=30,
            inlines=(LiveGrantInline, ActiveHoldInline, LedgerInline),
            actions=_credit_actions,
        )
    )
    organization_page.creation.provide(
        Creation(
            form=OpenOrganizationForm,
            fields=("name", "slug", "billing_email", "personal", "owner_user_id", "owner_email"),
            create=_open,
        )
    )


def _date(timestamp) -> str:
    from datetime import UTC, datetime

    return f"{datetime.fromtimestamp(timestamp, tz=UTC):%Y-%m-%d}" if timestamp else ""

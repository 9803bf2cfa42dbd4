"""Closed subscription periods on the org page (what each used, reported, counted, invoiced) and
their correction by billing admins; the list of closed periods."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from core.admin.actions import ObjectAction, ReasonForm
from core.admin.readonly import ReadOnlyAdmin, ReadOnlyInline
from core.admin.sections import Section, organization_page
from core.display import credits_text, money_text
from orgs.services.audit import Actor
from usage.models import ClosedPeriod, ClosedPeriodStatus
from usage.services.period_close import correct_closed_period


def _closed_period_status(period: ClosedPeriod) -> str:
    if period.status == ClosedPeriodStatus.DISCREPANCY:
        return format_html(
            "<strong style='color:#ba2121'>differs from Stripe by {}</strong>",
            credits_text(period.difference),
        )
    if period.status == ClosedPeriodStatus.CORRECTED:
        if period.correction_report is not None:
            how = f"{period.correction_report.value} credits reported ({period.correction_report.identifier})"
        else:
            how = f"{money_text(period.credited_cents, period.currency)} credited to the customer"
        return f"corrected by {period.corrected_by}: {how}"
    return period.get_status_display().lower()


class ClosedPeriodInline(ReadOnlyInline):
    """Each closed subscription period: what it used, what was reported and counted, what was billed."""

    model = ClosedPeriod
    limit = 12
    verbose_name_plural = "Closed periods (latest 12)"
    fields = ("period", "plan", "included", "overage", "stripe", "invoiced", "state", "note")
    readonly_fields = fields
    ordering = ["-period_end", "-id"]

    @admin.display(description="period (UTC)")
    def period(self, obj):
        return f"{obj.period_start:%Y-%m-%d %H:%M} – {obj.period_end:%Y-%m-%d %H:%M}"

    @admin.display(description="included credits used")
    def included(self, obj):
        if obj.included_used is None:
            return "—"
        return f"{credits_text(obj.included_used)} of {credits_text(obj.included_credits)}"

    @admin.display(description="overage reported")
    def overage(self, obj):
        return credits_text(obj.overage_reported)

    @admin.display(description="Stripe's meter")
    def stripe(self, obj):
        return credits_text(obj.stripe_counted)

    @admin.display(description="invoiced")
    def invoiced(self, obj):
        return format_html(
            "{} <span class='quiet'>{}</span>",
            money_text(obj.amount_invoiced_cents, obj.currency) or "—",
            obj.invoice_id,
        )

    @admin.display(description="check")
    def state(self, obj):
        return _closed_period_status(obj)


class CorrectPeriodForm(ReasonForm):
    period = forms.ModelChoiceField(queryset=ClosedPeriod.objects.none(), empty_label=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["period"].queryset = ClosedPeriod.objects.filter(
            org=self.obj, status=ClosedPeriodStatus.DISCREPANCY
        )
        self.fields["period"].label_from_instance = (
            lambda p: f"{p}: Stripe differs by {credits_text(p.difference)}"
        )


def _correct_period(request, org, data):
    period = correct_closed_period(
        period_id=data["period"].pk, reason=data["reason"], actor=Actor.staff(request.user)
    )
    if period.correction_report is not None:
        return (
            f"{org.name}: {period.correction_report.value} overage credits Stripe lacks for {period} are "
            "reported by the next reporting run, on the open invoice."
        )
    credited = money_text(period.credited_cents, period.currency)
    return f"{org.name}: {credited} credited to the customer's Stripe balance."


def _has_discrepancy(org) -> bool:
    return ClosedPeriod.objects.filter(org=org, status=ClosedPeriodStatus.DISCREPANCY).exists()


def _period_actions() -> list[ObjectAction]:
    # Billing money: billing admins (every usage permission), not Support.
    return [
        ObjectAction(
            "correct-period",
            "Correct a closed period",
            CorrectPeriodForm,
            "usage.change_closedperiod",
            _correct_period,
            applies=_has_discrepancy,
            group="Billing",
        )
    ]


def register_closed_periods() -> None:
    """Called from usage/admin.py's register_sections."""
    organization_page.add(
        Section("closed-periods", order=45, inlines=(ClosedPeriodInline,), actions=_period_actions)
    )


@admin.register(ClosedPeriod)
class ClosedPeriodAdmin(ReadOnlyAdmin):
    list_display = ["period_end", "org", "plan", "overage_reported", "stripe_counted", "status", "invoice_id"]
    list_filter = ["status"]
    list_select_related = ["org"]
    search_fields = ["=invoice_id", "=org__public_id"]

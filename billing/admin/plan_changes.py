"""The org page's plan changes: the requested changes and staff's "Change plan" (with a reason)."""

from django import forms

from billing.models import Plan, PlanChange
from billing.services.plan_changes import request_plan_change
from core.admin.actions import ObjectAction, ReasonForm
from core.admin.readonly import ReadOnlyInline
from core.admin.sections import Section, organization_page
from orgs.services.audit import Actor


class PlanChangeInline(ReadOnlyInline):
    model = PlanChange
    fk_name = "org"
    fields = (
        "created_at",
        "kind",
        "from_plan",
        "to_plan",
        "status",
        "effective_at",
        "user_id",
        "reason",
        "error",
    )
    readonly_fields = fields
    ordering = ["-id"]


class ChangePlanForm(ReasonForm):
    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), to_field_name="name")


def _change_plan(request, org, data):
    change = request_plan_change(
        org=org,
        plan_name=data["plan"].name,
        # The form's one-time token: the same form submitted twice asks once, even past the admin's check.
        idempotency_key=f"admin-form:{data['submission']}",
        reason=data["reason"],
        actor=Actor.staff(request.user),
    )
    return (
        f"{org.name}: change to {change.to_plan.name} ({change.kind}) asked of Stripe; it takes effect "
        f"{change.effective_at:%Y-%m-%d %H:%M} UTC, once Stripe's subscription says so."
    )


def _actions() -> list[ObjectAction]:
    # Charging or ending a customer's subscription: billing admins (every billing permission), not Support.
    return [
        ObjectAction(
            "change-plan", "Change plan", ChangePlanForm, "billing.change_billingaccount", _change_plan
        )
    ]


def register_plan_change_section() -> None:
    """Called from BillingConfig.ready."""
    organization_page.add(Section("plan-changes", order=25, inlines=(PlanChangeInline,), actions=_actions))

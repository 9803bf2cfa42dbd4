"""The org page as billing extends it: billing account, credits, soft delete with the billing check."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from billing.models import BillingAccount, CreditGrant, Hold, HoldState, LedgerDrift, LedgerEntry
from billing.selectors import balances
from billing.services.accounts import open_organization, soft_delete_organization
from billing.services.grants import GRANTABLE, grant_credits
from orgs.admin.actions import ActionForm, ObjectAction, ReasonForm
from orgs.admin.organizations import OrganizationAdmin, ReadOnlyInline
from orgs.models import Organization
from orgs.services.audit import Actor


class BillingAccountInline(ReadOnlyInline):
    model = BillingAccount
    fields = [
        "plan",
        "payment_status",
        "overdue_since",
        "suspended_at",
        "suspension_source",
        "suspension_reason",
        "first_paid_at",
    ]
    readonly_fields = fields


class LiveGrantInline(ReadOnlyInline):
    model = CreditGrant
    verbose_name_plural = "Credit grants with credits left"
    fields = ["public_id", "grant_type", "amount", "remaining", "expires_at", "created_at", "reason"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(remaining__gt=0).order_by("expires_at", "id")


class ActiveHoldInline(ReadOnlyInline):
    model = Hold
    verbose_name_plural = "Active holds"
    fields = ["public_id", "product", "metric", "user_id", "cost", "expires_at"]
    readonly_fields = fields

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
    fields = ["created_at", "entry_type", "amount", "covered", "overage", "balance_after", "reference"]
    readonly_fields = fields
    ordering = ["-id"]


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
    grant, _ = grant_credits(org=org, actor=Actor.staff(request.user), **data)
    return f"Granted {grant.amount} {grant.grant_type} credits to {org.name}."


def _soft_delete(request, org, data):
    soft_delete_organization(org=org, actor=Actor.staff(request.user), reason=data["reason"])
    return f"{org.name} was soft-deleted; it can be restored from this page."


admin.site.unregister(Organization)


@admin.register(Organization)
class BillingOrganizationAdmin(OrganizationAdmin):
    inlines = [
        BillingAccountInline,
        *OrganizationAdmin.inlines[:2],
        LiveGrantInline,
        ActiveHoldInline,
        LedgerInline,
        *OrganizationAdmin.inlines[2:],
    ]
    list_display = [*OrganizationAdmin.list_display, "plan", "payment_status"]
    list_select_related = ["billing_account__plan"]
    readonly_fields = [*OrganizationAdmin.readonly_fields, "credits"]
    fields = [*OrganizationAdmin.fields, "credits"]

    @admin.display(ordering="billing_account__plan__name")
    def plan(self, org):
        return org.billing_account.plan.name

    @admin.display(ordering="billing_account__payment_status")
    def payment_status(self, org):
        return org.billing_account.get_payment_status_display()

    @admin.display(description="Credits")
    def credits(self, org):
        available, posted = balances(org)
        drift = LedgerDrift.objects.filter(org=org).first()
        return format_html(
            "available <strong>{}</strong> · posted {}{}",
            available,
            posted,
            format_html(" · <span style='color:#ba2121'>ledger drift found {}</span>", drift.found_at)
            if drift
            else "",
        )

    def get_object_actions(self):
        limit = settings.SUPPORT_CREDIT_GRANT_LIMIT
        return [
            *super().get_object_actions(),
            ObjectAction(
                "grant-credits",
                f"Grant credits (Support: up to {limit})",
                GrantCreditsForm,
                "billing.grant_credits",
                _grant,
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

    def has_add_permission(self, request):
        return request.user.has_perm("orgs.add_organization")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = OpenOrganizationForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "slug", "billing_email", "personal", "owner_user_id", "owner_email"]
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return super().get_readonly_fields(request, obj) if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        org = open_organization(
            name=data["name"],
            billing_email=data["billing_email"],
            slug=data["slug"],
            personal=data["personal"],
            owner_user_id=data["owner_user_id"] or None,
            owner_email=data["owner_email"],
            actor=Actor.staff(request.user),
        )
        obj.pk = org.pk  # the admin redirects to the new org's page

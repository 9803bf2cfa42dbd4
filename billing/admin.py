"""The org page as billing extends it: billing account, soft delete with the billing check."""

from django import forms
from django.contrib import admin

from billing.models import BillingAccount, Plan
from billing.services.accounts import open_organization, soft_delete_organization
from orgs.admin.actions import ObjectAction, ReasonForm
from orgs.admin.history import HistoryAdmin
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


class OpenOrganizationForm(forms.ModelForm):
    owner_user_id = forms.CharField(max_length=128, required=False, strip=False)
    owner_email = forms.EmailField(required=False)

    class Meta:
        model = Organization
        fields = ["name", "slug", "billing_email", "personal"]


def _soft_delete(request, org, data):
    soft_delete_organization(org=org, actor=Actor.staff(request.user), reason=data["reason"])
    return f"{org.name} was soft-deleted; it can be restored from this page."


admin.site.unregister(Organization)


@admin.register(Organization)
class BillingOrganizationAdmin(OrganizationAdmin):
    inlines = [BillingAccountInline, *OrganizationAdmin.inlines]
    list_display = [*OrganizationAdmin.list_display, "plan", "payment_status"]
    list_select_related = ["billing_account__plan"]

    @admin.display(ordering="billing_account__plan__name")
    def plan(self, org):
        return org.billing_account.plan.name

    @admin.display(ordering="billing_account__payment_status")
    def payment_status(self, org):
        return org.billing_account.get_payment_status_display()

    def get_object_actions(self):
        return [
            *super().get_object_actions(),
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


@admin.register(Plan)
class PlanAdmin(HistoryAdmin):
    """Plans come from the catalog (load_catalog): read here, changed there."""

    list_display = ["name", "monthly_credits", "seat_limit", "overage_allowed", "monthly_price_cents"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

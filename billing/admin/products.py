"""The product page: its terms (billing's: a grant limit in credits, a bill-from), its API keys and
who changed what. Terms change only through update_product_terms, with a reason."""

from django import forms
from django.contrib import admin, messages

from billing.exceptions import InvalidProductTerms
from billing.services.product_terms import check_product_terms, update_product_terms
from core.admin.actions import ActionForm, ObjectAction, ObjectActionsMixin, ShownOnce
from core.admin.history import HistoryAdmin
from core.admin.readonly import ReadOnlyInline
from orgs.models import AuditEntry, Product, ProductAPIKey
from orgs.services.audit import Actor
from orgs.services.products import issue_api_key


class ProductAPIKeyInline(admin.TabularInline):
    model = ProductAPIKey
    extra = 0
    can_delete = False
    fields = ("prefix", "name", "created", "revoked", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ProductAuditInline(ReadOnlyInline):
    """Who changed the product's terms, when, from what to what."""

    model = AuditEntry
    fk_name = "product"
    limit = 50
    verbose_name_plural = "Changes of terms (latest 50)"
    fields = ("created_at", "actor_label", "reason", "before", "after")
    readonly_fields = fields
    ordering = ["-created_at", "-id"]


class IssueKeyForm(ActionForm):
    name = forms.CharField(max_length=50, help_text="What the key is for, e.g. “red production”.")


def _issue_key(request, product, data):
    api_key, key = issue_api_key(product=product, name=data["name"], actor=Actor.staff(request.user))
    return ShownOnce(
        f"API key “{api_key.name}” for {product.slug}: copy it now, it is shown only once and stored "
        "only hashed.",
        key,
    )


class ProductTermsForm(forms.ModelForm):
    """The product's terms, checked by the same rules as the catalog (check_product_terms)."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    class Meta:
        model = Product
        fields = ["name", "grant_limit", "bill_from"]
        help_texts = {
            "grant_limit": "The largest credit grant the product may make through the API.",
            "bill_from": "UTC, on a whole hour, not in the past. Once passed it cannot be moved. "
            "Empty: the global BILLING_BILL_FROM.",
        }

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            check_product_terms(
                self.instance,
                name=data.get("name"),
                grant_limit=data.get("grant_limit"),
                bill_from=data.get("bill_from"),
            )
        except InvalidProductTerms as error:
            for field, message in error.details["fields"].items():
                self.add_error(field, message[:1].upper() + message[1:])
        return data


@admin.register(Product)
class ProductAdmin(ObjectActionsMixin, HistoryAdmin):
    """Products come from the catalog (load_catalog) or `createproduct`; staff change their terms
    here, through update_product_terms, with a reason."""

    list_display = ["slug", "name", "grant_limit", "bill_from", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [ProductAPIKeyInline, ProductAuditInline]
    form = ProductTermsForm
    fields = ["slug", "name", "grant_limit", "bill_from", "reason", "created_at"]
    readonly_fields = ["slug", "created_at"]

    def get_fields(self, request, obj=None):
        # A view-only page (Support) has no form, so no reason to ask for.
        fields = super().get_fields(request, obj)
        return fields if self.has_change_permission(request, obj) else [f for f in fields if f != "reason"]

    def get_object_actions(self):
        return [
            ObjectAction(
                "issue-key",
                "Issue API key",
                IssueKeyForm,
                "orgs.add_productapikey",
                _issue_key,
                message_level=messages.WARNING,
            ),
        ]

    def has_add_permission(self, request):
        return False  # created by the catalog or createproduct, never around them

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        update_product_terms(
            product=obj,
            name=data["name"],
            grant_limit=data["grant_limit"],
            bill_from=data["bill_from"],
            actor=Actor.staff(request.user),
            reason=data["reason"],
        )
        obj.refresh_from_db()

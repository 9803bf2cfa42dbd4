from django import forms
from django.contrib import admin, messages
from rest_framework_api_key.models import APIKey

from orgs.admin.actions import ActionForm, ObjectAction, ObjectActionsMixin, ReasonForm
from orgs.admin.history import HistoryAdmin
from orgs.models import Product, ProductAPIKey
from orgs.services.audit import Actor
from orgs.services.products import issue_api_key, revoke_api_key

# The library's own key model is unused: keys belong to products (ProductAPIKey).
admin.site.unregister(APIKey)


class ProductAPIKeyInline(admin.TabularInline):
    model = ProductAPIKey
    extra = 0
    can_delete = False
    fields = ["prefix", "name", "created", "revoked", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class IssueKeyForm(ActionForm):
    name = forms.CharField(max_length=50, help_text="What the key is for, e.g. “red production”.")


def _issue_key(request, product, data):
    api_key, key = issue_api_key(product=product, name=data["name"], actor=Actor.staff(request.user))
    return (
        f"API key “{api_key.name}” for {product.slug}: {key} — copy it now, it is shown only once "
        "and stored only hashed."
    )


@admin.register(Product)
class ProductAdmin(ObjectActionsMixin, HistoryAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [ProductAPIKeyInline]

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

    def has_delete_permission(self, request, obj=None):
        return False


def _revoke_key(request, api_key, data):
    revoke_api_key(api_key=api_key, actor=Actor.staff(request.user), reason=data["reason"])
    return f"API key {api_key.prefix}… is revoked."


@admin.register(ProductAPIKey)
class ProductAPIKeyAdmin(ObjectActionsMixin, HistoryAdmin):
    list_display = ["prefix", "product", "name", "created", "revoked", "revoked_at"]
    list_filter = ["revoked", "product"]
    list_select_related = ["product"]
    search_fields = ["prefix", "name", "product__slug"]
    fields = ["prefix", "product", "name", "created", "revoked", "revoked_at", "expiry_date"]
    readonly_fields = fields

    def get_object_actions(self):
        return [
            ObjectAction(
                "revoke",
                "Revoke",
                ReasonForm,
                "orgs.change_productapikey",
                _revoke_key,
                applies=lambda api_key: not api_key.revoked,
            ),
        ]

    def has_add_permission(self, request):
        return False  # issued from the product's page, so the key is shown once, through the service

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # never deleted: revoked

"""API keys: listed, revoked with a reason; issued from the product's page (billing/admin/products.py)."""

from django.contrib import admin
from rest_framework_api_key.models import APIKey

from core.admin.actions import ObjectAction, ObjectActionsMixin, ReasonForm
from core.admin.history import HistoryAdmin
from orgs.models import ProductAPIKey
from orgs.services.audit import Actor
from orgs.services.products import revoke_api_key

# The library's own key model is unused: keys belong to products (ProductAPIKey).
admin.site.unregister(APIKey)


def _revoke_key(request, api_key, data):
    revoke_api_key(api_key=api_key, actor=Actor.staff(request.user), reason=data["reason"])
    return f"API key {api_key.prefix}… is revoked."


@admin.register(ProductAPIKey)
class ProductAPIKeyAdmin(ObjectActionsMixin, HistoryAdmin):
    list_display = ["prefix", "product", "name", "created", "revoked", "revoked_at"]
    list_filter = ["revoked", "product"]
    list_select_related = ["product"]
    search_fields = ["prefix", "name", "product__slug"]
    fields = ("prefix", "product", "name", "created", "revoked", "revoked_at", "expiry_date")
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

"""dj-stripe's own admin pages, read-only for everyone: the data is Stripe's, mirrored.

Its sync actions and custom action views are removed too: staff resync an org through the org
page's action, which goes through the billing services.
"""

from django.contrib import admin
from django.contrib.admin import ModelAdmin


class ReadOnlyStripeData:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}

    def get_urls(self):
        # Only the standard views: dj-stripe's CustomActionMixin adds an action view of its own.
        return ModelAdmin.get_urls(self)


for model, model_admin in list(admin.site._registry.items()):
    if model._meta.app_label == "djstripe":
        read_only = type(f"ReadOnly{type(model_admin).__name__}", (ReadOnlyStripeData, type(model_admin)), {})
        admin.site.unregister(model)
        admin.site.register(model, read_only)

from django.urls import path

from billing.webhooks import StripeWebhookView

# The namespace and name dj-stripe's own urls use, so anything reversing them still works.
app_name = "djstripe"

urlpatterns = [
    path("webhook/<uuid:uuid>/", StripeWebhookView.as_view(), name="djstripe_webhook_by_uuid"),
]

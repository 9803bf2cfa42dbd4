from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self):
        import stripe
        from django.conf import settings

        # Every call through the stripe library sends the pinned version (dj-stripe passes it on
        # most of its calls, not all).
        stripe.api_version = settings.STRIPE_API_VERSION
        # dj-stripe hooks: registering them is importing them.
        from billing import outbox_handlers, receivers  # noqa: F401

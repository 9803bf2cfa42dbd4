from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        import stripe
        from django.conf import settings

        from billing.admin.organizations import register_sections
        from billing.admin.plan_changes import register_plan_change_section
        from billing.admin.purchases import register_purchase_section
        from billing.selectors import seat_limit
        from core.registries import StaffPermissions, seat_limits, staff_permissions

        # Every call through the stripe library sends the pinned version (dj-stripe passes it on
        # most of its calls, not all).
        stripe.api_version = settings.STRIPE_API_VERSION
        # dj-stripe asks which account owns the key for every object it syncs: remembered here.
        from billing import djstripe_keys

        djstripe_keys.install()
        # dj-stripe hooks and outbox handlers: registering them is importing them.
        # Decision receipts waiting in this process are written at the end of a request once due.
        from django.core.signals import request_finished

        from billing import outbox_handlers, receivers  # noqa: F401
        from billing.services.receipts import flush_receipts

        request_finished.connect(flush_receipts, dispatch_uid="billing.flush_receipts")
        seat_limits.provide(seat_limit)
        register_sections()
        register_plan_change_section()
        register_purchase_section()
        staff_permissions.register(
            StaffPermissions(
                "billing",
                support_actions=frozenset(
                    {"grant_credits", "suspend_organization"}
                ),  # grants up to the limit
                # Synced Stripe data is read-only for everybody; staff may look at it.
                view_only_apps=("djstripe",),
                # Of it, Support reads what it is asked about; the rest is Billing admin's.
                support_sees_only=("djstripe.customer", "djstripe.subscription", "djstripe.invoice"),
            )
        )

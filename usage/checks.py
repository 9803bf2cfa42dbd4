from django.conf import settings
from django.core.checks import Warning, register


@register()
def bill_from_when_billing(app_configs, **kwargs):
    if settings.BILLING_SHADOW_MODE or settings.BILLING_BILL_FROM is not None:
        return []
    return [
        Warning(
            "BILLING_SHADOW_MODE is off but BILLING_BILL_FROM is unset.",
            hint="Only products with their own bill_from in the catalog are billed; set BILLING_BILL_FROM "
            "(an hour-aligned ISO-8601 instant) to bill the others.",
            id="usage.W001",
        )
    ]

from billing.admin import (  # noqa: F401 (registers the admins)
    organizations,
    products,
    receipts,
    records,
    stripe_events,
    synced_stripe,
)

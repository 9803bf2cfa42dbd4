from billing.admin import (  # noqa: F401 (registers the admins)
    organizations,
    plan_changes,
    products,
    purchases,
    receipts,
    records,
    stripe_events,
    synced_stripe,
)

from billing.admin import organizations, products, records, synced_stripe  # noqa: F401 (registers the admins)

from billing.admin import organizations, records, synced_stripe  # noqa: F401 (registers the admins)

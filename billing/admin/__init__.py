from billing.admin import organizations, records  # noqa: F401 (registers the admins)

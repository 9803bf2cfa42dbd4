from orgs.admin import organizations, products, records  # noqa: F401 (registers the admins)

from orgs.admin import api_keys, organizations, records  # noqa: F401 (registers the admins)

from orgs.admin import api_keys, events, organizations, records  # noqa: F401 (registers the admins)

"""The back office's admin site: the project's own apps first on the index, Stripe's mirror last.

Installed in place of `django.contrib.admin` (settings: `core.admin.site.BackOfficeAdminConfig`), so
`admin.site` and every `@admin.register` are this site.
"""

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# The index's order: what support reads first, first; anything unlisted after these, by name.
FIRST = ("orgs", "billing", "usage")
LAST = ("auth", "djstripe")
RENAMED = {"djstripe": "Stripe (synced from Stripe, read-only)"}

# The back office's icon, inline: no request for /favicon.ico from the admin's pages.
FAVICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%23417690'/%3E"
    "%3Cpath d='M4 4h5a2 2 0 0 1 0 4H4zm0 4h6a2 2 0 0 1 0 4H4z' fill='white'/%3E%3C/svg%3E"
)


def _rank(app: dict[str, Any]) -> tuple[int, str]:
    label = app["app_label"]
    if label in FIRST:
        return FIRST.index(label), ""
    if label in LAST:
        return len(FIRST) + 1 + LAST.index(label), ""
    return len(FIRST), str(app["name"])


class BackOfficeSite(AdminSite):
    site_header = "Billing back office"
    site_title = "Billing back office"
    index_title = "Organizations, billing and usage"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["name"] = RENAMED.get(app["app_label"], app["name"])
        return sorted(apps, key=_rank)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        return {**super().each_context(request), "favicon": FAVICON}


class BackOfficeAdminConfig(AdminConfig):
    default_site = "core.admin.site.BackOfficeSite"

from django.apps import AppConfig


class BillingsiteConfig(AppConfig):
    """The project package is an app only to hold the cross-app management commands."""

    name = "billingsite"

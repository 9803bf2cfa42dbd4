from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"

    def ready(self):
        from usage import checks, receivers  # noqa: F401 (register the system checks, the webhook receivers)

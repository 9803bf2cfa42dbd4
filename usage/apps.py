from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"

    def ready(self) -> None:
        from core.registries import StaffPermissions, staff_permissions
        from usage import checks, receivers  # noqa: F401 (register the system checks, the webhook receivers)
        from usage.admin import register_sections

        register_sections()
        staff_permissions.register(StaffPermissions("usage"))

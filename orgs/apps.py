from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations"

    def ready(self) -> None:
        from core.registries import StaffPermissions, staff_permissions
        from orgs.admin.sections import register_sections

        # Outbox handlers register themselves when their module loads.
        from orgs.services import invitations  # noqa: F401

        register_sections()
        staff_permissions.register(StaffPermissions("orgs", support_actions=frozenset({"resend_invitation"})))

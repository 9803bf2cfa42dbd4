from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations"

    def ready(self):
        # Outbox handlers register themselves when their module loads.
        from orgs.services import invitations  # noqa: F401

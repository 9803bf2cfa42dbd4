from django.apps import AppConfig


class BillingsiteConfig(AppConfig):
    """The project package is an app to hold the cross-app management commands, and to wire Celery."""

    name = "billingsite"

    def ready(self) -> None:
        from billingsite.celery import app

        # Every app's tasks registered in every process (web, commands, workers): services send
        # tasks by name (the outbox, the period close), and where tasks run in process (the embedded
        # default, the tests) a registered task runs at once instead of waiting on a broker.
        app.autodiscover_tasks(force=True)

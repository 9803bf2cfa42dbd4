from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor every domain app stands on: errors, the API and admin kits, env and time
    parsing, request helpers, and the registries through which a lower app asks an upper one."""

    name = "core"

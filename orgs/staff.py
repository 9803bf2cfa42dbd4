"""The two staff groups and their permissions: Support and Billing admin.

`sync_staff_groups` is run by data migrations (whenever an app adds models) so that the groups
always match the rules each app registers (core.registries.staff_permissions, filled in the apps'
AppConfig.ready): Support sees everything and may take the few actions an app lists; Billing admin
may do everything in the apps that register.
"""

import operator
from functools import reduce
from typing import Any

from django.contrib.auth.management import create_permissions
from django.db.models import Q

from core.registries import staff_permissions

SUPPORT = "Support"
BILLING_ADMIN = "Billing admin"


def sync_staff_groups(apps: Any, schema_editor: Any = None) -> None:
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    registered = list(staff_permissions)
    own_apps = [p.app_label for p in registered]
    view_only_apps = sorted({app for p in registered for app in p.view_only_apps})
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    views = Permission.objects.filter(
        content_type__app_label__in=own_apps + view_only_apps, codename__startswith="view_"
    )
    narrowed: dict[str, list[str]] = {}  # app label -> the only models Support views of it
    for name in sorted({name for p in registered for name in p.support_sees_only}):
        app_label, model = name.split(".")
        narrowed.setdefault(app_label, []).append(model)
    support_views = views
    for app_label, models in narrowed.items():
        support_views = support_views.exclude(content_type__app_label=app_label) | views.filter(
            content_type__app_label=app_label, content_type__model__in=models
        )
    # Filtered, not fetched one by one: Django orders migrations of unrelated apps by their graph
    # alone, and a new leaf migration elsewhere can run orgs' sync before billing's models (and
    # their permissions) exist in the migration state; billing's own later sync grants them.
    wanted = [
        Q(content_type__app_label=p.app_label, codename=codename)
        for p in registered
        for codename in p.support_actions
    ]
    support_actions = Permission.objects.filter(reduce(operator.or_, wanted)) if wanted else []
    everything = Permission.objects.filter(content_type__app_label__in=own_apps)

    support, _ = Group.objects.get_or_create(name=SUPPORT)
    support.permissions.set([*support_views, *support_actions])
    billing_admin, _ = Group.objects.get_or_create(name=BILLING_ADMIN)
    billing_admin.permissions.set([*views, *everything])

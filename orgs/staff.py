"""The two staff groups and their permissions (DESIGN.md: Support and Billing admin).

`sync_staff_groups` is run by data migrations (whenever an app adds models) so that the groups
always match these rules: Support sees everything and may take the few actions listed here;
Billing admin may do everything.
"""

from django.contrib.auth.management import create_permissions

SUPPORT = "Support"
BILLING_ADMIN = "Billing admin"

OWN_APPS = ("orgs", "billing", "usage")
# Synced Stripe data is read-only for everybody; staff may look at it.
VIEW_ONLY_APPS = ("djstripe",)

SUPPORT_ACTIONS = {
    ("billing", "grant_credits"),  # up to SUPPORT_CREDIT_GRANT_LIMIT
    ("billing", "suspend_organization"),  # suspend and lift, with a reason
    ("orgs", "resend_invitation"),
}


def sync_staff_groups(apps, schema_editor=None):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    views = Permission.objects.filter(
        content_type__app_label__in=OWN_APPS + VIEW_ONLY_APPS, codename__startswith="view_"
    )
    support_actions = [
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
        for app_label, codename in sorted(SUPPORT_ACTIONS)
    ]
    everything = Permission.objects.filter(content_type__app_label__in=OWN_APPS)

    support, _ = Group.objects.get_or_create(name=SUPPORT)
    support.permissions.set([*views, *support_actions])
    billing_admin, _ = Group.objects.get_or_create(name=BILLING_ADMIN)
    billing_admin.permissions.set([*views, *everything])

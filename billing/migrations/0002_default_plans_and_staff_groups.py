from decimal import Decimal

from django.db import migrations

from orgs.staff import sync_staff_groups

# The plans every database starts with, as data; the catalog (load_catalog) changes them and adds
# more. Ranks and the default plan came later (0008_plans_are_data).
DEFAULT_PLANS = {
    "free": {"monthly_credits": Decimal("1000"), "seat_limit": 3, "overage_allowed": False},
    "pro": {"monthly_credits": Decimal("20000"), "seat_limit": 20, "overage_allowed": True},
    "team": {"monthly_credits": Decimal("100000"), "seat_limit": None, "overage_allowed": True},
}


def create_default_plans(apps, schema_editor=None):
    Plan = apps.get_model("billing", "Plan")
    for name, terms in DEFAULT_PLANS.items():
        Plan.objects.get_or_create(name=name, defaults=terms)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("orgs", "0001_initial"),
        ("djstripe", "0003_2_11"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_default_plans, migrations.RunPython.noop),
        migrations.RunPython(sync_staff_groups, migrations.RunPython.noop),
    ]

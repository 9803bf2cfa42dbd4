from django.db import migrations

from billing.defaults import create_default_plans
from orgs.staff import sync_staff_groups


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

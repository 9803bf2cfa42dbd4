from django.db import migrations

from orgs.staff import sync_staff_groups


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_stripe_billing")]

    operations = [migrations.RunPython(sync_staff_groups, migrations.RunPython.noop)]

from django.db import migrations

from orgs.staff import sync_staff_groups


class Migration(migrations.Migration):
    """Of Stripe's mirror, Support keeps viewing customers, subscriptions and invoices only."""

    dependencies = [("billing", "0015_denial_receipts")]

    operations = [migrations.RunPython(sync_staff_groups, migrations.RunPython.noop)]

from django.db import migrations

from orgs.staff import sync_staff_groups


def open_credit_balances(apps, schema_editor):
    """Every org has a balance row; orgs created before it existed get one at zero."""
    Organization = apps.get_model("orgs", "Organization")
    CreditBalance = apps.get_model("billing", "CreditBalance")
    missing = Organization.objects.filter(credit_balance__isnull=True).values_list("pk", flat=True)
    CreditBalance.objects.bulk_create([CreditBalance(org_id=pk) for pk in missing.iterator()], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_credit_policy_ledger_holds"),
        ("usage", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(open_credit_balances, migrations.RunPython.noop),
        migrations.RunPython(sync_staff_groups, migrations.RunPython.noop),
    ]

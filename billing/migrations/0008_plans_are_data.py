"""Plans become data: the catalog's rows are the allowlist (no CheckConstraint listing names), each
with a rank and one of them the default plan. Existing plans keep their order (free < pro < team, as
PLAN_RANK had it; any other plan after them, oldest first) and `free` becomes the default."""

from django.db import migrations, models

# The ranks the code held until now (billing.models.PLAN_RANK).
FORMER_RANKS = {"free": 0, "pro": 1, "team": 2}
FORMER_DEFAULT = "free"


def ranks_and_default(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    HistoricalPlan = apps.get_model("billing", "HistoricalPlan")
    plans = sorted(Plan.objects.all(), key=lambda p: (FORMER_RANKS.get(p.name, len(FORMER_RANKS)), p.pk))
    for rank, plan in enumerate(plans):
        plan.rank, plan.is_default = rank, plan.name == FORMER_DEFAULT
        plan.save(update_fields=["rank", "is_default"])
        HistoricalPlan.objects.filter(id=plan.pk).update(rank=rank, is_default=plan.is_default)
    if plans and not any(plan.is_default for plan in plans):
        Plan.objects.filter(pk=plans[0].pk).update(is_default=True)
    # History rows of plans that no longer exist (none are ever deleted; for completeness).
    HistoricalPlan.objects.filter(rank__isnull=True).update(rank=-1)


def no_failed_checkouts(apps, schema_editor):
    # Nothing ever wrote "failed"; should a row say so, it is a session nobody can pay any more.
    CheckoutSession = apps.get_model("billing", "CheckoutSession")
    CheckoutSession.objects.filter(status="failed").update(status="expired")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_billed_debt_and_claim_credits'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='plan',
            options={'ordering': ['rank']},
        ),
        migrations.RemoveConstraint(
            model_name='plan',
            name='plan_name_in_allowlist',
        ),
        migrations.AddField(
            model_name='historicalplan',
            name='is_default',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='historicalplan',
            name='rank',
            field=models.IntegerField(db_index=True, null=True),
        ),
        migrations.AddField(
            model_name='plan',
            name='is_default',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='plan',
            name='rank',
            field=models.IntegerField(null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='checkoutsession',
            name='status',
            field=models.CharField(choices=[('creating', 'Creating'), ('open', 'Open'), ('complete', 'Complete'), ('expired', 'Expired')], default='creating', max_length=16),
        ),
        migrations.AlterField(
            model_name='historicalplan',
            name='name',
            field=models.SlugField(max_length=32),
        ),
        migrations.AlterField(
            model_name='plan',
            name='name',
            field=models.SlugField(max_length=32, unique=True),
        ),
        migrations.RunPython(ranks_and_default, migrations.RunPython.noop),
        migrations.RunPython(no_failed_checkouts, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='historicalplan',
            name='rank',
            field=models.IntegerField(db_index=True),
        ),
        migrations.AlterField(
            model_name='plan',
            name='rank',
            field=models.IntegerField(unique=True),
        ),
        migrations.AddConstraint(
            model_name='plan',
            constraint=models.UniqueConstraint(condition=models.Q(('is_default', True)), fields=('is_default',), name='plan_one_default'),
        ),
    ]

import pytest
from django.core.management import call_command

from billing.models import CreditGrant, LedgerEntry
from orgs.models import Organization
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db


def test_it_seeds_once_and_is_idempotent(capsys):
    call_command("seed_demo")
    counts = (Organization.objects.count(), UsageEvent.objects.count(), CreditGrant.objects.count())
    entries = LedgerEntry.objects.count()
    call_command("seed_demo")

    assert counts[0] == 3 and counts[1] > 1000
    assert (Organization.objects.count(), UsageEvent.objects.count(), CreditGrant.objects.count()) == counts
    assert LedgerEntry.objects.count() == entries
    assert "API key for the product red (shown once):" in capsys.readouterr().out.splitlines()[-1]

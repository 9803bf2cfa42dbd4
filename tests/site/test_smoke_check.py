import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orgs.models import Organization, ProductAPIKey
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db


def test_it_passes_end_to_end_and_cleans_up(catalog, capsys):
    call_command("smoke_check", "--product", "red")

    out = capsys.readouterr().out
    for step in ("create org", "invite", "accept invitation", "check entitlement", "record usage"):
        assert f"ok   {step}" in out
    org = Organization.objects.get(name__startswith="smoke check")
    assert org.deleted_at is not None
    assert UsageEvent.objects.filter(org=org).count() == 1
    assert not ProductAPIKey.objects.filter(revoked=False).exists()


def test_it_names_the_first_step_that_fails(catalog, monkeypatch):
    monkeypatch.setattr("billing.selectors.current_prices", lambda product, now=None: [])
    monkeypatch.setattr("billing.api.credits.current_prices", lambda product, now=None: [])

    with pytest.raises(CommandError, match="read credit policy"):
        call_command("smoke_check", "--product", "red")
    assert Organization.objects.get(name__startswith="smoke check").deleted_at is not None
    assert not ProductAPIKey.objects.filter(revoked=False).exists()


def test_it_needs_a_known_product(db):
    with pytest.raises(CommandError, match="No product"):
        call_command("smoke_check", "--product", "nope")

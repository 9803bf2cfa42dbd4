import pytest
from django.core.management import call_command

from orgs.models import AuditEntry, Organization, Product, ProductAPIKey
from orgs.services.audit import Actor
from orgs.services.products import revoke_api_key
from tests.conftest import client_with

pytestmark = pytest.mark.django_db


def createproduct(*args, capsys):
    call_command("createproduct", *args)
    return capsys.readouterr().out.splitlines()[-1]


def test_createproduct_prints_a_working_key_last(capsys):
    key = createproduct("green", "--name", "Green", capsys=capsys)

    product = Product.objects.get(slug="green")
    assert product.name == "Green"
    response = client_with(key).post(
        "/api/v1/orgs", {"name": "A", "billing_email": "a@a.example"}, format="json"
    )
    assert response.status_code == 201
    assert Organization.objects.get().memberships.count() == 0


def test_createproduct_twice_keeps_one_product_and_issues_another_key(capsys):
    first = createproduct("green", capsys=capsys)
    second = createproduct("green", capsys=capsys)

    assert first != second
    assert Product.objects.filter(slug="green").count() == 1
    assert ProductAPIKey.objects.filter(product__slug="green").count() == 2
    assert AuditEntry.objects.filter(action="api_key.issued", category="security").count() == 2


def test_createproduct_refuses_a_bad_slug():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a slug"):
        call_command("createproduct", "not a slug")
    assert not Product.objects.exists()


def test_revoking_is_idempotent_and_never_deletes(api_key):
    api_key_row = ProductAPIKey.objects.get()

    revoke_api_key(api_key=api_key_row, actor=Actor.system("tests"), reason="rotated")
    revoke_api_key(api_key=api_key_row, actor=Actor.system("tests"), reason="rotated")

    api_key_row.refresh_from_db()
    assert api_key_row.revoked and api_key_row.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_key.revoked").count() == 1
    with pytest.raises(ValueError, match="never deleted"):
        api_key_row.delete()
    assert ProductAPIKey.objects.count() == 1

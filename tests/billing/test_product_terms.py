"""Product terms (name, grant limit, bill-from): changed only through update_product_terms, checked
by the catalog's rules, audited with the staff user, before and after."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from billing.exceptions import InvalidProductTerms
from billing.services.product_terms import update_product_terms
from orgs.models import AuditEntry, Organization, Product
from orgs.services.audit import Actor
from orgs.staff import BILLING_ADMIN
from tests.conftest import staff
from tests.orgs.test_admin import _management_forms

# These tests are about bill-from instants before and after "now": they pin their own clock.
pytestmark = [pytest.mark.django_db, pytest.mark.time_machine("2026-11-18T10:00:00Z", tick=False)]

NEXT_MONTH = datetime(2026, 12, 1, tzinfo=UTC)


def change_page(product):
    return reverse("admin:orgs_product_change", args=[product.pk])


def terms_form(client, product, **changes):
    """The change form as a browser posts it: name, grant limit, bill-from (date + time), reason."""
    data = {
        "name": product.name,
        "grant_limit": str(product.grant_limit),
        "bill_from_0": "",
        "bill_from_1": "",
        "reason": "contract amendment 7",
        **_management_forms(client, change_page(product)),
    }
    data.update(changes)
    return data


@pytest.fixture
def billing_admin(client):
    client.user = staff("bea", BILLING_ADMIN)
    client.force_login(client.user)
    return client


def stored(product) -> tuple:
    product.refresh_from_db()
    return product.name, product.grant_limit, product.bill_from


# --- the admin ------------------------------------------------------------------------------------


def test_a_half_hour_bill_from_is_refused_on_the_form_and_nothing_changes(billing_admin, product):
    before = stored(product)

    response = billing_admin.post(
        change_page(product),
        terms_form(billing_admin, product, bill_from_0="2026-12-01", bill_from_1="12:30:00"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "must fall on a whole hour" in errors["bill_from"][0].lower()
    assert stored(product) == before
    assert not AuditEntry.objects.filter(product=product).exists()
    assert product.history.count() == 1  # only its creation


def test_a_valid_edit_goes_through_the_service_and_is_audited(billing_admin, product):
    response = billing_admin.post(
        change_page(product),
        terms_form(
            billing_admin, product, grant_limit="2500.5", bill_from_0="2026-12-01", bill_from_1="00:00:00"
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert stored(product) == ("Red", Decimal("2500.5"), NEXT_MONTH)
    entry = AuditEntry.objects.get(product=product)
    assert (entry.action, entry.category, entry.actor_type, entry.actor_user) == (
        "product.terms_changed",
        "product",
        "staff",
        billing_admin.user,
    )
    assert entry.before == {"slug": "red", "name": "Red", "grant_limit": "10000.000000", "bill_from": None}
    assert entry.after == {
        "slug": "red",
        "name": "Red",
        "grant_limit": "2500.500000",
        "bill_from": "2026-12-01T00:00:00+00:00",
    }
    assert entry.reason == "contract amendment 7"
    page = billing_admin.get(change_page(product)).content.decode()
    assert "Changes of terms" in page and "2500.500000" in page and "contract amendment 7" in page


def test_saving_the_same_terms_twice_writes_one_entry(billing_admin, product):
    form = terms_form(billing_admin, product, grant_limit="7000")

    first = billing_admin.post(change_page(product), form)
    second = billing_admin.post(change_page(product), form)

    assert (first.status_code, second.status_code) == (302, 302)
    assert AuditEntry.objects.filter(product=product).count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"grant_limit": "-1"}, "grant_limit", "0 or more"),
        ({"grant_limit": "1.0000001"}, "grant_limit", "decimal places"),
        ({"bill_from_0": "2026-11-01", "bill_from_1": "00:00:00"}, "bill_from", "not be in the past"),
        ({"reason": ""}, "reason", "required"),
    ],
)
def test_bad_terms_are_form_errors_and_change_nothing(billing_admin, product, changes, field, says):
    before = stored(product)

    response = billing_admin.post(change_page(product), terms_form(billing_admin, product, **changes))

    assert response.status_code == 200
    assert says in " ".join(response.context["adminform"].form.errors[field])
    assert stored(product) == before
    assert not AuditEntry.objects.filter(product=product).exists()


def test_support_sees_product_terms_but_may_not_edit_them(support, product):
    before = stored(product)

    page = support.get(change_page(product))
    response = support.post(change_page(product), terms_form(support, product, grant_limit="1"))

    assert page.status_code == 200 and "10000" in page.content.decode()
    assert response.status_code == 403
    assert stored(product) == before
    assert not AuditEntry.objects.filter(product=product).exists()


def test_products_are_not_added_in_the_admin(billing_admin):
    response = billing_admin.post(
        reverse("admin:orgs_product_add"), {"slug": "green", "name": "Green", "grant_limit": "1"}
    )

    assert response.status_code == 403
    assert not Product.objects.filter(slug="green").exists()


# Models staff may write in the admin, each through its service (tested above and in test_admin.py);
# auth's users and groups are Django's own staff accounts.
WRITABLE = {
    Organization: {"add": True, "change": True},  # open_organization / update_organization
    Product: {"add": False, "change": True},  # update_product_terms
}
# Staff accounts and their login lockouts (django-axes: deleting an attempt unlocks a login) are not
# billing data: the admin manages them as Django does.
STAFF_ACCOUNTS = {"auth", "axes"}


def test_nothing_else_in_the_admin_saves_around_a_service(admin_user):
    request = RequestFactory().get("/admin/")
    request.user = admin_user  # a superuser: every permission there is

    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in STAFF_ACCOUNTS:
            continue
        allowed = WRITABLE.get(model, {"add": False, "change": False})
        name = model._meta.label
        assert model_admin.has_add_permission(request) == allowed["add"], name
        assert model_admin.has_change_permission(request) == allowed["change"], name
        assert not model_admin.has_delete_permission(request), name
        assert not model_admin.list_editable, name
        assert not model_admin.get_actions(request), name
        for inline in model_admin.get_inline_instances(request):
            if model_admin.has_change_permission(request):
                # Inlines on an editable page are display only: their rows save around the services.
                assert not inline.has_add_permission(request, None), (name, inline)
                assert not inline.has_change_permission(request, None), (name, inline)
                assert not inline.can_delete, (name, inline)


# --- the service ------------------------------------------------------------------------------------


def test_the_service_refuses_a_half_hour_bill_from_naming_the_field(product):
    with pytest.raises(InvalidProductTerms) as refused:
        update_product_terms(
            product=product,
            name="Red",
            grant_limit="10000",
            bill_from="2026-12-01T12:30:00Z",
            actor=Actor.system("tests"),
        )

    assert list(refused.value.details["fields"]) == ["bill_from"]
    assert (refused.value.code, refused.value.status) == ("invalid_request", 400)
    assert stored(product)[2] is None


def test_a_passed_bill_from_cannot_be_moved(product, settings):
    Product.objects.filter(pk=product.pk).update(bill_from=datetime(2026, 11, 1, tzinfo=UTC))

    for moved in (NEXT_MONTH, None, datetime(2026, 10, 1, tzinfo=UTC)):
        with pytest.raises(InvalidProductTerms) as refused:
            update_product_terms(
                product=product, name="Red", grant_limit="10000", bill_from=moved, actor=Actor.system("t")
            )
        assert "has begun" in refused.value.details["fields"]["bill_from"]
    _, changed = update_product_terms(
        product=product,
        name="Renamed",
        grant_limit="5",
        bill_from="2026-11-01T00:00:00Z",
        actor=Actor.system("t"),
    )
    assert changed and stored(product) == ("Renamed", Decimal(5), datetime(2026, 11, 1, tzinfo=UTC))


def test_clearing_a_future_bill_from_may_not_fall_back_to_a_passed_global_one(product, settings):
    settings.BILLING_BILL_FROM = datetime(2026, 11, 1, tzinfo=UTC)
    Product.objects.filter(pk=product.pk).update(bill_from=NEXT_MONTH)

    with pytest.raises(InvalidProductTerms) as refused:
        update_product_terms(
            product=product, name="Red", grant_limit="10000", bill_from=None, actor=Actor.system("t")
        )

    assert "past" in refused.value.details["fields"]["bill_from"]
    assert stored(product)[2] == NEXT_MONTH

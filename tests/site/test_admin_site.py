"""The admin as a whole: the index's order, Stripe's mirror (read-only, mostly Billing admin's), one
way of writing credits, no internal ids in captions, no favicon 404."""

import re

import pytest
from django.urls import reverse

from orgs.staff import BILLING_ADMIN
from tests.conftest import staff

pytestmark = pytest.mark.django_db
STRIPE_FOR_SUPPORT = {"Customers", "Subscriptions", "Invoices"}


def index_apps(client) -> list[str]:
    return [app["app_label"] for app in client.get(reverse("admin:index")).context["app_list"]]


def test_the_projects_apps_come_first_and_stripes_mirror_last(admin_client):
    apps = index_apps(admin_client)

    assert apps[:3] == ["orgs", "billing", "usage"]
    assert apps[-1] == "djstripe"
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Stripe (synced from Stripe, read-only)" in html


def test_support_sees_only_customers_subscriptions_and_invoices_of_stripe(support):
    apps = {app["app_label"]: app for app in support.get(reverse("admin:index")).context["app_list"]}

    assert {m["name"] for m in apps["djstripe"]["models"]} == STRIPE_FOR_SUPPORT
    assert support.get(reverse("admin:djstripe_charge_changelist")).status_code == 403
    assert support.get(reverse("admin:djstripe_invoice_changelist")).status_code == 200


def test_billing_admin_reads_all_of_stripes_mirror_and_changes_none_of_it(client):
    client.force_login(staff("bea", BILLING_ADMIN))
    apps = {app["app_label"]: app for app in client.get(reverse("admin:index")).context["app_list"]}

    assert len(apps["djstripe"]["models"]) > 20
    assert not any(m["add_url"] for m in apps["djstripe"]["models"])
    assert client.get(reverse("admin:djstripe_charge_changelist")).status_code == 200


def test_no_favicon_404(client, admin_client):
    icon = client.get("/favicon.ico")
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    assert '<link rel="icon" href="data:image/svg+xml' in page


def test_the_org_page_has_no_internal_ids_in_captions_and_trimmed_credits(support, org):
    page = support.get(reverse("admin:orgs_organization_change", args=[org.pk])).content.decode()

    assert f"Billing account of {org.pk}" not in page
    assert f" in {org.pk} as " not in page
    assert not re.search(r"\d\.\d*0{3,}\b", page)  # 1000.000000 and the like
    assert "1,000" in page

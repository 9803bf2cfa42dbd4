"""The registries through which a lower app asks an upper one (core/registries.py, core/admin/sections.py)."""

import ast
import inspect

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

import orgs.staff
from billing.selectors import seat_limit
from core.admin.sections import AdminPage, organization_page
from core.registries import Slot, seat_limits


def test_the_org_page_has_every_apps_sections_in_their_order():
    models = [inline.model._meta.label for inline in organization_page.inlines()]
    assert models == [
        "billing.BillingAccount",
        "orgs.Membership",
        "orgs.Invitation",
        "billing.PlanChange",
        "billing.CreditGrant",
        "billing.Hold",
        "billing.LedgerEntry",
        "billing.CreditPurchase",
        "usage.MeterReport",
        "usage.ClosedPeriod",
        "orgs.AuditEntry",
    ]
    assert [f.__name__ for f in organization_page.fields()] == [
        "credits",
        "invoices",
        "usage_by_month",
        "usage_chart",
        "meter_parity",
    ]


def test_the_org_page_does_not_depend_on_the_order_apps_register_in():
    reordered = AdminPage("the same page, registered backwards")
    for section in reversed(organization_page.sections()):
        reordered.add(section)

    assert reordered.inlines() == organization_page.inlines()
    assert reordered.fields() == organization_page.fields()
    assert [a.name for a in reordered.actions()] == [a.name for a in organization_page.actions()]


def test_a_section_key_is_taken_once():
    page = AdminPage("a page")
    first, *_ = organization_page.sections()
    page.add(first)
    page.add(first)  # the same section again (a second ready()) is harmless
    with pytest.raises(RuntimeError):
        page.add(type(first)(key=first.key, order=first.order + 1))


def test_the_seat_limit_is_billings_answer_through_the_registry_not_a_setting():
    assert seat_limits.get() is seat_limit
    assert not hasattr(settings, "ORGS_SEAT_LIMIT")


def test_a_slot_has_one_provider_and_says_when_it_has_none():
    slot: Slot[int] = Slot("the answer")
    with pytest.raises(LookupError, match="No installed app provides the answer"):
        slot.get()
    slot.provide(42)
    slot.provide(42)
    with pytest.raises(RuntimeError, match="Two apps provide the answer"):
        slot.provide(43)
    assert slot.get() == 42


def test_orgs_staff_rules_name_no_app_above_orgs():
    strings = {
        node.value
        for node in ast.walk(ast.parse(inspect.getsource(orgs.staff)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert not {"billing", "usage", "djstripe"} & strings


@pytest.mark.django_db
def test_the_staff_groups_carry_what_each_app_registered():
    support = set(
        Group.objects.get(name=orgs.staff.SUPPORT).permissions.values_list(
            "content_type__app_label", "codename"
        )
    )
    billing_admin = set(
        Group.objects.get(name=orgs.staff.BILLING_ADMIN).permissions.values_list(
            "content_type__app_label", "codename"
        )
    )

    assert {
        ("orgs", "resend_invitation"),
        ("billing", "grant_credits"),
        ("billing", "suspend_organization"),
    } <= support
    assert ("billing", "grant_unlimited_credits") not in support
    assert {("djstripe", "view_invoice"), ("usage", "view_meterreport")} <= support
    assert {("usage", "change_meterreport"), ("billing", "grant_unlimited_credits")} <= billing_admin
    assert not any(app == "djstripe" and not codename.startswith("view_") for app, codename in billing_admin)

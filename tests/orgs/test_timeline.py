"""One timeline per org: the audit trail and simple-history's changes merged, newest first."""

import re

import pytest
import time_machine
from django.urls import reverse

from orgs.models import Role
from orgs.services.audit import Actor
from orgs.services.memberships import upsert_membership
from tests.conftest import DEFAULT_CLOCK, submitted

# The page's words name days and dates ("4 days ago", "on 12 Nov"): pinned at the suite's instant.
pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(DEFAULT_CLOCK, tick=False)]


def timeline(org):
    return reverse("admin:orgs_organization_history", args=[org.pk])


def act(org, action):
    return reverse("admin:orgs_organization_act", args=[org.pk, action])


def rows(page: str) -> list[str]:
    return re.findall(r'<tr class="timeline-entry (\w+)">(.*?)</tr>', page, re.S)


def test_history_opens_the_timeline_with_a_suspension_and_its_lift_newest_first(support, org):
    with time_machine.travel("2026-11-18 11:00Z", tick=False):
        support.post(act(org, "suspend"), submitted({"reason": "chargeback under review"}))
    with time_machine.travel("2026-11-18 12:00Z", tick=False):
        support.post(act(org, "lift-suspension"), submitted({"reason": "cleared by the bank"}))

    page = support.get(timeline(org)).content.decode()

    assert (
        support.get(reverse("admin:orgs_organization_change", args=[org.pk]))
        .content.decode()
        .count(timeline(org))
    )
    audit = [body for source, body in rows(page) if source == "audit"]
    assert "suspension.lifted" in audit[0] and "cleared by the bank" in audit[0] and "staff: sam" in audit[0]
    assert "suspension.suspended" in audit[1] and "chargeback under review" in audit[1]
    changes = [
        body for source, body in rows(page) if source == "history" and "Billing account changed" in body
    ]
    assert changes and "staff: sam" in changes[0] and "suspended_at" in changes[0]
    stamps = re.findall(r'white-space: nowrap">([\d\- :]+)<', page)
    assert stamps == sorted(stamps, reverse=True)


def test_changes_made_without_a_staff_user_never_say_none(support, org, product):
    upsert_membership(org=org, user_id="u-new", role=Role.MEMBER, actor=Actor.for_product(product))

    page = support.get(timeline(org)).content.decode()

    assert "None" not in page
    created = next(body for source, body in rows(page) if "Membership created" in body and "u-new" in body)
    assert "a product or a job (no staff user)" in created
    assert any(
        "membership." in body and "product" in body for source, body in rows(page) if source == "audit"
    )


def test_an_outsider_to_the_admin_cannot_read_a_timeline(client, org):
    response = client.get(timeline(org))

    assert response.status_code == 302 and "/login/" in response["Location"]

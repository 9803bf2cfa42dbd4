"""The org page's actions: shown only where they apply, labels true for the viewer, and every action
form safe to submit twice (one effect; the second submit is told so)."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from billing.models import CreditGrant
from core.models import FormSubmission
from orgs.models import AuditEntry, Invitation, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation
from orgs.staff import BILLING_ADMIN
from tests.concurrency import committing, run_concurrently
from tests.conftest import staff, submitted

pytestmark = pytest.mark.django_db


def act(org, action):
    return reverse("admin:orgs_organization_act", args=[org.pk, action])


def change_page(org):
    return reverse("admin:orgs_organization_change", args=[org.pk])


def grant_form(amount="10"):
    return submitted({"amount": amount, "grant_type": "bonus", "reason": "goodwill", "expires_at": ""})


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_form_carries_a_fresh_one_time_token(support, org):
    first = support.get(act(org, "grant-credits")).content.decode()
    second = support.get(act(org, "grant-credits")).content.decode()

    tokens = [
        re.search(r'name="submission" value="([0-9a-f-]{36})"', page).group(1) for page in (first, second)
    ]
    assert tokens[0] != tokens[1]
    assert 'type="hidden" name="submission"' in first


def test_a_grant_submitted_twice_grants_once_and_says_so(support, org):
    form = grant_form()

    first = support.post(act(org, "grant-credits"), form, follow=True)
    second = support.post(act(org, "grant-credits"), form, follow=True)

    assert CreditGrant.objects.filter(org=org, grant_type="bonus").count() == 1
    assert AuditEntry.objects.filter(action="credits.granted").count() == 1
    assert messages_of(first) == [f"Granted 10 bonus credits to {org.name}."]
    (again,) = messages_of(second)
    assert "already submitted" in again and "nothing was done again" in again
    assert f"Granted 10 bonus credits to {org.name}." in again


def test_two_forms_are_two_grants(support, org):
    support.post(act(org, "grant-credits"), grant_form())
    support.post(act(org, "grant-credits"), grant_form())

    assert CreditGrant.objects.filter(org=org, grant_type="bonus").count() == 2


def test_a_refused_submit_can_be_corrected_and_sent_again_with_the_same_token(support, org, settings):
    settings.SUPPORT_CREDIT_GRANT_LIMIT = Decimal(100)
    form = grant_form("500")

    refused = support.post(act(org, "grant-credits"), form)
    granted = support.post(act(org, "grant-credits"), {**form, "amount": "50"})

    assert refused.status_code == 200 and "grant_limit_exceeded" in refused.content.decode()
    assert granted.status_code == 302
    assert CreditGrant.objects.get(org=org, grant_type="bonus").amount == Decimal(50)
    assert FormSubmission.objects.get().done_at is not None


def test_a_form_without_its_token_does_nothing(support, org):
    form = grant_form()
    del form["submission"]

    response = support.post(act(org, "grant-credits"), form)

    assert response.status_code == 200
    assert not CreditGrant.objects.filter(org=org, grant_type="bonus").exists()


def test_a_suspension_lifted_twice_is_lifted_once(support, org):
    support.post(act(org, "suspend"), submitted({"reason": "chargeback"}))
    form = submitted({"reason": "cleared"})

    support.post(act(org, "lift-suspension"), form)
    org.billing_account.refresh_from_db()
    support.post(act(org, "suspend"), submitted({"reason": "again"}))
    second = support.post(act(org, "lift-suspension"), form, follow=True)

    org.billing_account.refresh_from_db()
    assert org.billing_account.suspended_at is not None  # the repeated lift did not act
    assert AuditEntry.objects.filter(org=org, action="suspension.lifted").count() == 1
    assert any("already submitted" in message for message in messages_of(second))


@committing
def test_a_grant_double_submitted_at_the_same_instant_grants_once(org):
    user = staff("sam", "Support")
    form = grant_form()

    def submit(_):
        client = Client()
        client.force_login(User.objects.get(pk=user.pk))
        return client.post(act(org, "grant-credits"), form).status_code

    statuses = run_concurrently(submit, clients=4)

    assert statuses == [302] * 4
    assert CreditGrant.objects.filter(org=org, grant_type="bonus").count() == 1
    assert FormSubmission.objects.count() == 1


# --- What the toolbar shows -----------------------------------------------------------------------


def test_no_invitation_actions_without_an_open_invitation(billing_admin_client, org):
    page = billing_admin_client.get(change_page(org)).content.decode()

    assert act(org, "invite") in page
    assert act(org, "resend-invitation") not in page and act(org, "revoke-invitation") not in page

    create_invitation(org=org, email="x@x.example", role=Role.MEMBER, actor=Actor.system("t"))
    page = billing_admin_client.get(change_page(org)).content.decode()
    assert act(org, "resend-invitation") in page and act(org, "revoke-invitation") in page
    assert Invitation.objects.count() == 1


def test_the_grant_label_is_the_viewers_own_limit(support, org, admin_client, settings):
    settings.SUPPORT_CREDIT_GRANT_LIMIT = Decimal(1000)

    support_page = support.get(change_page(org)).content.decode()
    superuser_page = admin_client.get(change_page(org)).content.decode()

    assert ">Grant credits (up to 1,000)<" in support_page
    assert ">Grant credits<" in superuser_page and "up to 1,000" not in superuser_page


def test_the_toolbar_is_in_the_pages_flow_with_history(admin_client, org):
    page = admin_client.get(change_page(org)).content.decode()

    assert 'class="object-tools"' not in page  # Django's floated tools covered the title
    toolbar = re.search(r'<nav class="action-toolbar".*?</nav>', page, re.S).group(0)
    assert [g for g in re.findall(r'action-group-label">(\w+)<', toolbar)] == [
        "Billing",
        "Organization",
        "Members",
        "Credits",
    ]
    assert "History" in toolbar


@pytest.fixture
def billing_admin_client(client):
    client.force_login(staff("bea", BILLING_ADMIN))
    return client

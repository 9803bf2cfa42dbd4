import re
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillingAccount, CreditGrant
from core.display import credits_text
from orgs.models import AuditEntry, Invitation, Membership, Organization, ProductAPIKey, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation
from orgs.staff import BILLING_ADMIN
from tests.conftest import FREE_CREDITS, MEMBER, OWNER, client_with, staff, submitted

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_admin(client):
    user = staff("bea", BILLING_ADMIN)
    client.force_login(user)
    client.user = user
    return client


def act(org, action):
    return reverse("admin:orgs_organization_act", args=[org.pk, action])


def change_page(org):
    return reverse("admin:orgs_organization_change", args=[org.pk])


@pytest.mark.parametrize(
    "term",
    ["Acme Corp", "acme", "ap@acme.example", "AP@ACME.EXAMPLE", "dev@acme.example", "public_id"],
)
def test_support_finds_an_org_by_any_handle(support, org, term):
    acme = Organization.objects.create(name="Acme Corp", slug="acme", billing_email="ap@acme.example")
    Membership.objects.create(
        org=acme, user_id="u-dev", role=Role.OWNER, email="Dev@acme.example", joined_at=acme.created_at
    )
    term = acme.public_id if term == "public_id" else term

    response = support.get(reverse("admin:orgs_organization_changelist"), {"q": term})

    assert response.status_code == 200
    assert list(response.context["cl"].queryset) == [acme]


def test_support_sees_the_org_page_and_only_its_own_actions(support, org):
    create_invitation(org=org, email="x@x.example", role=Role.MEMBER, actor=Actor.system("t"))

    page = support.get(change_page(org)).content.decode()

    assert OWNER in page and MEMBER in page and "x@x.example" in page
    assert act(org, "resend-invitation") in page
    for forbidden in ("remove-member", "revoke-invitation", "soft-delete", "upsert-member"):
        assert f'href="{act(org, forbidden)}"' not in page


def test_support_cannot_remove_a_member(support, org):
    response = support.post(act(org, "remove-member"), submitted({"user_id": MEMBER, "reason": "asked"}))

    assert response.status_code == 403
    assert Membership.objects.filter(org=org, user_id=MEMBER).exists()


def test_support_resends_an_invitation_and_sees_the_new_token_once(support, org):
    invitation, old_token = create_invitation(
        org=org, email="x@x.example", role=Role.MEMBER, actor=Actor.system("t")
    )

    response = support.post(
        act(org, "resend-invitation"), submitted({"invitation": invitation.pk}), follow=True
    )

    message = str(next(iter(response.context["messages"])))
    token = re.search(r"\(shown only now\): (\S+)", message).group(1)
    assert token != old_token
    entry = AuditEntry.objects.get(action="invitation.resent")
    assert (entry.actor_type, entry.actor_user.username) == ("staff", "sam")


def test_billing_admin_removes_a_member_through_the_service(billing_admin, org):
    response = billing_admin.post(
        act(org, "remove-member"), submitted({"user_id": MEMBER, "reason": "left the company"})
    )

    assert response.status_code == 302
    assert not Membership.objects.filter(org=org, user_id=MEMBER).exists()
    entry = AuditEntry.objects.get(action="membership.removed")
    assert (entry.actor_user, entry.reason) == (billing_admin.user, "left the company")


def test_a_refused_action_shows_the_rule_and_changes_nothing(billing_admin, org):
    response = billing_admin.post(act(org, "remove-member"), submitted({"user_id": OWNER, "reason": "x"}))

    assert response.status_code == 200
    assert "last_owner" in response.content.decode()
    assert Membership.objects.filter(org=org, user_id=OWNER).exists()


def test_an_action_needs_a_reason(billing_admin, org):
    response = billing_admin.post(act(org, "soft-delete"), submitted({"reason": ""}))

    assert response.status_code == 200
    assert Organization.live.filter(pk=org.pk).exists()


def test_billing_admin_soft_deletes_and_restores(billing_admin, org):
    billing_admin.post(act(org, "soft-delete"), submitted({"reason": "duplicate org"}))
    assert not Organization.live.filter(pk=org.pk).exists()

    billing_admin.post(act(org, "restore"), submitted({"reason": "not a duplicate after all"}))

    assert Organization.live.filter(pk=org.pk).exists()
    assert list(
        AuditEntry.objects.filter(org=org, category="organization").values_list("action", flat=True)
    ) == [
        "organization.restored",
        "organization.deleted",
        "organization.created",
    ]


def test_billing_admin_revokes_an_invitation(billing_admin, org):
    invitation, _ = create_invitation(org=org, email="x@x.example", role=Role.MEMBER, actor=Actor.system("t"))

    billing_admin.post(
        act(org, "revoke-invitation"), submitted({"invitation": invitation.pk, "reason": "sent by mistake"})
    )

    assert Invitation.objects.get(pk=invitation.pk).revoked_at is not None


def test_billing_admin_edits_an_org_through_the_service(billing_admin, org):
    old_name = org.name
    data = {"name": "Renamed", "slug": org.slug, "billing_email": "new@x.example", "personal": ""}
    data.update(_management_forms(billing_admin, change_page(org)))

    response = billing_admin.post(change_page(org), data)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    org.refresh_from_db()
    assert (org.name, org.billing_email) == ("Renamed", "new@x.example")
    entry = AuditEntry.objects.get(action="organization.updated")
    assert (entry.before["name"], entry.after["name"], entry.actor_user) == (
        old_name,
        "Renamed",
        billing_admin.user,
    )


def test_billing_admin_opens_an_org_with_its_billing_account(billing_admin):
    data = {
        "name": "Fresh",
        "slug": "fresh",
        "billing_email": "f@x.example",
        "owner_user_id": "u-1",
        "owner_email": "",
    }
    data.update(_management_forms(billing_admin, reverse("admin:orgs_organization_add")))

    billing_admin.post(reverse("admin:orgs_organization_add"), data)

    org = Organization.objects.get(slug="fresh")
    assert BillingAccount.objects.get(org=org).plan.name == "free"
    assert org.memberships.get().role == Role.OWNER


def test_billing_admin_issues_an_api_key_shown_once(billing_admin, product, org):
    response = billing_admin.post(
        reverse("admin:orgs_product_act", args=[product.pk, "issue-key"]),
        submitted({"name": "red prod"}),
        follow=True,
    )

    key = re.search(r'<code id="shown-once"[^>]*>(\S+\.\S+)</code>', response.content.decode()).group(1)
    assert not list(response.context["messages"])  # never in a message (they may live in a cookie)
    assert client_with(key).get(f"/api/v1/orgs/{org.public_id}").status_code == 200
    assert key.partition(".")[2] not in str(list(ProductAPIKey.objects.values()))
    page = billing_admin.get(reverse("admin:orgs_product_change", args=[product.pk])).content.decode()
    assert key not in page


def test_support_cannot_issue_or_revoke_keys(support, product, api_key):
    api_key_row = ProductAPIKey.objects.get()

    issue = support.post(
        reverse("admin:orgs_product_act", args=[product.pk, "issue-key"]), submitted({"name": "x"})
    )
    revoke = support.post(
        reverse("admin:orgs_productapikey_act", args=[api_key_row.pk, "revoke"]), submitted({"reason": "x"})
    )

    assert (issue.status_code, revoke.status_code) == (403, 403)
    assert ProductAPIKey.objects.filter(revoked=False).count() == 1


def test_nothing_can_be_hard_deleted(billing_admin, org):
    response = billing_admin.post(reverse("admin:orgs_organization_delete", args=[org.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert Organization.objects.filter(pk=org.pk).exists()


def test_history_is_shown_and_cannot_be_reverted(billing_admin, org):
    history = billing_admin.get(reverse("admin:orgs_organization_history", args=[org.pk]))

    assert history.status_code == 200
    record = org.history.first()
    version = reverse("admin:orgs_organization_simple_history", args=[org.pk, record.history_id])
    assert billing_admin.get(version).status_code == 200
    revert = billing_admin.post(
        version, {"name": "Reverted", "slug": org.slug, "billing_email": "r@x.example"}
    )
    assert revert.status_code == 403
    assert Organization.objects.get(pk=org.pk).name == org.name


def _management_forms(client, url):
    """The management forms of every (read-only) inline on the page, as the browser would send them."""
    html = client.get(url).content.decode()
    return dict(
        re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"', html)
    )


def test_support_grants_credits_up_to_the_limit(support, org, settings):
    settings.SUPPORT_CREDIT_GRANT_LIMIT = Decimal(1000)
    form = {"amount": "1000.5", "grant_type": "adjustment", "reason": "goodwill", "expires_at": ""}

    refused = support.post(act(org, "grant-credits"), submitted(form))
    granted = support.post(act(org, "grant-credits"), submitted({**form, "amount": "1000"}))

    assert refused.status_code == 200 and "grant_limit_exceeded" in refused.content.decode()
    assert granted.status_code == 302
    grant = CreditGrant.objects.get(org=org, grant_type="adjustment")
    assert grant.amount == Decimal(1000)
    entry = AuditEntry.objects.get(action="credits.granted")
    assert (entry.actor_user.username, entry.reason) == ("sam", "goodwill")


def test_billing_admin_grants_beyond_the_support_limit(billing_admin, org):
    form = {"amount": "50000", "grant_type": "purchase", "reason": "invoice 42", "expires_at": ""}

    assert billing_admin.post(act(org, "grant-credits"), submitted(form)).status_code == 302
    assert CreditGrant.objects.filter(org=org, grant_type="purchase", amount=50000).exists()


def test_the_org_page_shows_credits_and_ledger(support, org):
    page = support.get(change_page(org)).content.decode()

    assert f"available <strong>{credits_text(FREE_CREDITS)}</strong>" in page
    assert "Ledger (latest 50" in page and "allowance" in page

"""Resending an invitation: a pending one keeps its seat; reviving an expired one needs a free seat."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from orgs.exceptions import SeatLimitReached
from orgs.models import AuditEntry, Invitation, InvitationState, OutboxMessage, Role
from orgs.selectors import seats_in_use
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation, expire_invitations, hash_token, resend_invitation
from orgs.services.memberships import upsert_membership
from orgs.staff import SUPPORT
from tests.concurrency import committing, run_concurrently
from tests.conftest import FREE_SEATS, OWNER, fill_seats, staff, submitted
from tests.factories import OrganizationFactory

SYSTEM = Actor.system("tests")


def invite(org, email: str, *, days_ago: int = 0) -> tuple[Invitation, str]:
    """An invitation sent `days_ago` days ago (expired after 7)."""
    with time_machine.travel(timezone.now() - timedelta(days=days_ago), tick=False):
        return create_invitation(org=org, email=email, role=Role.MEMBER, actor=SYSTEM)


def add_member(org, user_id: str):
    return upsert_membership(org=org, user_id=user_id, role=Role.MEMBER, actor=SYSTEM)


@pytest.mark.django_db
@pytest.mark.parametrize("marked_by_the_job", [True, False])
def test_reviving_an_expired_invitation_on_a_full_org_is_refused(org, marked_by_the_job):
    # The invitation's seat went when it expired; the org then fills every seat.
    invitation, token = invite(org, "late@x.example", days_ago=8)
    if marked_by_the_job:
        expire_invitations()
    fill_seats(org)  # the seat the expired invitation no longer held too
    before = Invitation.objects.get(pk=invitation.pk)

    with pytest.raises(SeatLimitReached) as refused:
        resend_invitation(invitation=invitation, actor=SYSTEM)

    assert refused.value.details == {"seat_limit": FREE_SEATS, "seats_in_use": FREE_SEATS}
    after = Invitation.objects.get(pk=invitation.pk)
    assert after.state_at(timezone.now()) == InvitationState.EXPIRED
    assert (after.token_hash, after.expires_at, after.expired_at) == (
        hash_token(token),
        before.expires_at,
        before.expired_at,
    )
    assert not AuditEntry.objects.filter(action="invitation.resent").exists()
    assert not OutboxMessage.objects.exists()
    assert seats_in_use(org, now=timezone.now()) == FREE_SEATS


@pytest.mark.django_db
def test_reviving_an_expired_invitation_takes_a_free_seat(org):
    invitation, _ = invite(org, "late@x.example", days_ago=8)
    expire_invitations()
    fill_seats(org, leave=1)

    resent, token = resend_invitation(invitation=invitation, actor=SYSTEM)

    assert resent.state_at(timezone.now()) == InvitationState.PENDING
    assert resent.token_hash == hash_token(token)
    assert seats_in_use(org, now=timezone.now()) == FREE_SEATS
    with pytest.raises(SeatLimitReached):
        add_member(org, "one-too-many")  # the revived invitation holds the last seat


@pytest.mark.django_db
def test_resending_a_pending_invitation_on_a_full_org_needs_no_extra_seat(org):
    fill_seats(org, leave=1)
    invitation, old_token = invite(org, "soon@x.example", days_ago=2)  # the last seat
    assert seats_in_use(org, now=timezone.now()) == FREE_SEATS

    first, token = resend_invitation(invitation=invitation, actor=SYSTEM)
    second, newer = resend_invitation(invitation=first, actor=SYSTEM)  # and again

    assert len({hash_token(old_token), hash_token(token), hash_token(newer)}) == 3
    assert second.expires_at == timezone.now() + timedelta(days=7)
    assert AuditEntry.objects.filter(action="invitation.resent").count() == 2
    assert seats_in_use(org, now=timezone.now()) == FREE_SEATS


@pytest.mark.django_db
def test_support_sees_the_seat_rule_when_a_resend_is_refused(client, org):
    client.force_login(staff("sam", SUPPORT))
    invitation, _ = invite(org, "late@x.example", days_ago=8)
    fill_seats(org)
    url = reverse("admin:orgs_organization_act", args=[org.pk, "resend-invitation"])

    response = client.post(url, submitted({"invitation": invitation.pk}))

    assert response.status_code == 200
    assert "seat_limit_reached" in response.content.decode()
    assert Invitation.objects.get(pk=invitation.pk).state_at(timezone.now()) == InvitationState.EXPIRED


def _attempt(call) -> str:
    try:
        call()
    except SeatLimitReached as error:
        return error.code
    return "ok"


@committing
def test_two_concurrent_revivals_on_an_org_with_one_free_seat_take_it_once():
    org = OrganizationFactory(owner_user_id=OWNER)
    invitations = [invite(org, f"late{n}@x.example", days_ago=8)[0] for n in range(2)]
    fill_seats(org, leave=1)  # after both expired: one seat is left

    results = run_concurrently(
        lambda n: _attempt(lambda: resend_invitation(invitation=invitations[n], actor=SYSTEM)), 2
    )

    assert sorted(results) == ["ok", "seat_limit_reached"]
    assert seats_in_use(org, now=timezone.now()) == FREE_SEATS
    assert AuditEntry.objects.filter(org=org, action="invitation.resent").count() == 1


@committing
def test_a_revival_racing_an_upsert_for_the_last_seat_lets_one_through():
    org = OrganizationFactory(owner_user_id=OWNER)
    invitation, _ = invite(org, "late@x.example", days_ago=8)
    fill_seats(org, leave=1)
    calls = [
        lambda: resend_invitation(invitation=invitation, actor=SYSTEM),
        lambda: add_member(org, "last-seat"),
    ]

    results = run_concurrently(lambda n: _attempt(calls[n]), 2)

    assert sorted(results) == ["ok", "seat_limit_reached"]
    assert seats_in_use(org, now=timezone.now()) == FREE_SEATS

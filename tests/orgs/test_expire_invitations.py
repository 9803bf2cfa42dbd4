import json
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from orgs.models import AuditEntry, Invitation, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation, expire_invitations

pytestmark = pytest.mark.django_db


def invite(org, email):
    return create_invitation(org=org, email=email, role=Role.MEMBER, actor=Actor.system("tests"))[0]


def test_it_marks_expired_invitations_and_keeps_them(org, other_org):
    old = invite(org, "old@x.example")
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        fresh = invite(other_org, "fresh@x.example")

    summary = expire_invitations(now=timezone.now() + timedelta(days=8))

    assert summary == {"expired": 1}
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.expired_at is not None and fresh.expired_at is None
    assert Invitation.objects.count() == 2
    entry = AuditEntry.objects.get(action="invitation.expired")
    assert (entry.org, entry.actor_type, entry.actor_label) == (org, "system", "expire_invitations")


def test_running_it_twice_expires_once(org):
    invite(org, "old@x.example")
    later = timezone.now() + timedelta(days=8)

    assert expire_invitations(now=later) == {"expired": 1}
    assert expire_invitations(now=later) == {"expired": 0}
    assert AuditEntry.objects.filter(action="invitation.expired").count() == 1


def test_runjob_replays_a_missed_run_with_now(org):
    invite(org, "old@x.example")
    out = StringIO()

    call_command("runjob", "expire_invitations", "--now", "2099-01-01T00:00:00Z", stdout=out)

    assert json.loads(out.getvalue().splitlines()[-1]) == {"job": "expire_invitations", "expired": 1}
    assert Invitation.objects.get().expired_at.year == 2099


def test_runjob_leaves_pending_invitations_alone_without_now(org):
    invite(org, "new@x.example")
    out = StringIO()

    call_command("runjob", "expire_invitations", stdout=out)

    assert json.loads(out.getvalue().splitlines()[-1])["expired"] == 0

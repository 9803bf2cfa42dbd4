import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from core.retry import backoff
from orgs.models import AuditEntry, OutboxMessage, Role
from orgs.services import outbox
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation, hash_token, resend_invitation, token_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def resent(org):
    invitation, old_token = create_invitation(
        org=org, email="inv@x.example", role=Role.MEMBER, actor=Actor.system("t")
    )
    invitation, token = resend_invitation(invitation=invitation, actor=Actor.system("tests"))
    return invitation, old_token, token


def test_resending_rotates_the_token_and_queues_one_email(resent):
    invitation, old_token, token = resent

    assert invitation.token_hash == hash_token(token) != hash_token(old_token)
    message = OutboxMessage.objects.get()
    assert (message.kind, message.performed_at) == ("email.invitation", None)
    assert token_from(message.payload["nonce"]) == token
    assert AuditEntry.objects.filter(action="invitation.resent").count() == 1


def test_the_queued_email_holds_no_readable_token(resent, settings):
    """Secrets at rest: the outbox row holds a nonce; the token needs SECRET_KEY too."""
    _, _, token = resent
    stored = OutboxMessage.objects.values_list("payload", flat=True).get()

    assert token not in json.dumps(stored)
    settings.SECRET_KEY = "another-key-entirely"
    assert token_from(stored["nonce"]) != token


def test_an_email_queued_before_a_resend_is_not_sent_with_a_dead_token(org):
    invitation, _ = create_invitation(
        org=org, email="inv@x.example", role=Role.MEMBER, actor=Actor.system("t")
    )
    resend_invitation(invitation=invitation, actor=Actor.system("tests"))
    _, token = resend_invitation(invitation=invitation, actor=Actor.system("tests"))

    outbox.process_outbox()

    assert len(mail.outbox) == 1 and token in mail.outbox[0].body
    assert sorted(m.payload["nonce"] for m in OutboxMessage.objects.all()) == ["[sent]", "[superseded]"]


def test_the_job_sends_it_once_and_keeps_no_token(resent):
    _, _, token = resent

    first = outbox.process_outbox()
    second = outbox.process_outbox()

    assert first["performed"] == 1 and second["performed"] == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["inv@x.example"] and token in mail.outbox[0].body
    message = OutboxMessage.objects.get()
    assert message.performed_at is not None
    assert message.payload == {"invitation_id": message.payload["invitation_id"], "nonce": "[sent]"}


def test_a_failed_send_is_kept_and_retried_later(resent, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("SMTP is down")

    monkeypatch.setattr("orgs.services.invitations.send_mail", broken)
    assert outbox.process_outbox() == {"performed": 0, "retry": 1, "failed": 0, "skipped": 0, "not_due": 0}
    message = OutboxMessage.objects.get()
    assert (message.attempts, message.performed_at) == (1, None)
    assert "SMTP is down" in message.last_error
    assert outbox.process_outbox()["performed"] == 0  # backing off: not due yet
    monkeypatch.undo()

    summary = outbox.process_outbox(now=timezone.now() + timedelta(minutes=1))

    assert summary["performed"] == 1
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert (message.attempts, message.last_error) == (2, "")


def test_a_permanent_failure_is_parked_not_retried(resent, monkeypatch):
    def refused(*args, **kwargs):
        raise outbox.PermanentOutboxError("mailbox does not exist")

    monkeypatch.setattr("orgs.services.invitations.send_mail", refused)

    assert outbox.process_outbox()["failed"] == 1
    assert outbox.process_outbox(now=timezone.now() + timedelta(days=1))["failed"] == 0
    assert OutboxMessage.objects.get().failed_at is not None


def test_enqueueing_is_idempotent_on_its_key(org):
    first, created = outbox.enqueue_outbox(
        kind="email.invitation", payload={"invitation_id": 1, "token": "t"}, idempotency_key="k-1", org=org
    )
    again, created_again = outbox.enqueue_outbox(
        kind="email.invitation", payload={"invitation_id": 1, "token": "t"}, idempotency_key="k-1", org=org
    )

    assert (created, created_again, first.pk) == (True, False, again.pk)


def test_backoff_grows_and_is_capped():
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(50) == timedelta(hours=1)


def test_a_lost_broker_only_delays_the_message(org, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is gone")

    monkeypatch.setattr("orgs.tasks.perform_outbox_message.apply_async", broker_down)
    invitation, _ = create_invitation(
        org=org, email="inv@x.example", role=Role.MEMBER, actor=Actor.system("t")
    )

    with django_capture_on_commit_callbacks(execute=True):
        resend_invitation(
            invitation=invitation, actor=Actor.system("tests")
        )  # the enqueue fails after commit

    assert OutboxMessage.objects.get().performed_at is None
    assert outbox.process_outbox()["performed"] == 1
    assert len(mail.outbox) == 1

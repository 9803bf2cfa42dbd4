"""One-time tokens of the admin's action forms: a form submitted twice has one effect."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import FormSubmission


@dataclass(frozen=True)
class Claim:
    submission: FormSubmission
    first: bool  # False: this token was submitted before; `submission` says when and with what outcome


def claim_submission(*, token: uuid.UUID, action: str, target: str, user: Any) -> Claim:
    """Claim a form's one-time token before acting on it; committed at once (its own transaction).

    Idempotency: the token's unique row decides. The first claim inserts it and acts; any later claim
    (a double click, a resubmit after a reload, a concurrent request: the unique index makes it wait
    for the first one's commit) gets the existing row back and must not act.
    """
    try:
        with transaction.atomic():
            submission = FormSubmission.objects.create(
                token=token, action=action, target=target, user=user, created_at=timezone.now()
            )
    except IntegrityError:
        return Claim(FormSubmission.objects.get(token=token), first=False)
    return Claim(submission, first=True)


def finish_submission(*, submission: FormSubmission, outcome: str) -> None:
    """Store what the action did, shown to whoever submits the same form again. One UPDATE."""
    FormSubmission.objects.filter(pk=submission.pk).update(done_at=timezone.now(), outcome=outcome)


def release_submission(*, submission: FormSubmission) -> None:
    """The action refused (its service raised): nothing was done, so the form may be sent again."""
    FormSubmission.objects.filter(pk=submission.pk, done_at__isnull=True).delete()

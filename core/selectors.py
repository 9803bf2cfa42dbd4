"""Reads of core's own rows."""

import uuid
from typing import Any

from core.models import FormSubmission


def previous_submission(*, token: object, target: str, user: Any) -> FormSubmission | None:
    """The claim of this action form's token by this user on this target, if it was submitted before."""
    try:
        token = uuid.UUID(str(token))
    except ValueError:
        return None
    return FormSubmission.objects.filter(token=token, target=target, user=user).first()

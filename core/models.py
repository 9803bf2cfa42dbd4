"""The ground floor's one table: the admin's form submissions, so a form submitted twice acts once."""

from django.conf import settings
from django.db import models


class FormSubmission(models.Model):
    """One submission of an admin action form, keyed by the one-time token the form carried.

    Claimed before the action runs (so a second submit of the same form finds it and acts no more),
    its outcome stored once the action is done; released if the action refused (the form shows the
    error and may be sent again).
    """

    token = models.UUIDField(unique=True)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, help_text="The model and primary key acted on.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        verbose_name = "form submission"

    def __str__(self) -> str:
        return f"{self.action} on {self.target}"

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager
from simple_history.models import HistoricalRecords

from core.append_only import AppendOnly
from orgs.ids import new_invitation_id, new_org_id


class LiveOrganizationManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Organization(models.Model):
    """A customer organization. dj-stripe's subscriber: its Stripe customer is the org."""

    public_id = models.CharField(max_length=32, unique=True, default=new_org_id, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    billing_email = models.EmailField(max_length=254)
    personal = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Soft delete: invisible to the API and the jobs, restorable in the admin.
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    # Unfiltered on purpose: dj-stripe looks subscribers up through the default manager.
    objects = models.Manager()
    live = LiveOrganizationManager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["name", "id"]
        permissions = [("soft_delete_organization", "Can soft-delete and restore organizations")]
        # Support looks orgs up by billing email, case-insensitively (iexact compares UPPER()).
        indexes = [
            models.Index(Upper("billing_email"), name="org_billing_email_upper_idx"),
            # The admin's list is ordered by name: without it, every page sorts every org (1.2 s at
            # 100,000 orgs, bench/admin.py); with it, a page reads 50 index entries.
            models.Index(fields=["name", "id"], name="org_name_order_idx"),
        ]

    def __str__(self):
        return f"{self.name} ({self.public_id})"

    @property
    def email(self) -> str:
        # dj-stripe requires its subscriber model to have an `email`.
        return self.billing_email

    @property
    def is_live(self) -> bool:
        return self.deleted_at is None


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    BILLING = "billing"
    MEMBER = "member"


# owner > admin > billing > member, wherever "higher" is used.
ROLE_RANK = {Role.OWNER: 4, Role.ADMIN: 3, Role.BILLING: 2, Role.MEMBER: 1}


class Product(models.Model):
    """A product (Red, Blue, …) that may call the API with its keys. Its terms come from the catalog."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    # The largest credit grant this product may make through the API.
    grant_limit = models.DecimalField(max_digits=20, decimal_places=6, default=10000)
    # This product's own cutover to billing (hour-aligned); overrides BILLING_BILL_FROM.
    bill_from = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    # DRF treats the authenticated principal as request.user; a product is one.
    is_authenticated = True


class Membership(models.Model):
    # Indexed by the unique (org, user_id) constraint, whose prefix serves lookups by org.
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="memberships", db_index=False
    )
    user_id = models.CharField(max_length=128)
    role = models.CharField(max_length=16, choices=Role.choices)
    email = models.EmailField(max_length=254, blank=True)
    joined_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    # The product that reported (or last changed) this membership; empty for staff writes.
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.PROTECT)
    history = HistoricalRecords()

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "user_id"], name="membership_org_user_unique"),
        ]
        indexes = [models.Index(Upper("email"), name="membership_email_upper_idx")]

    def __str__(self):
        return f"{self.user_id} in {self.org_id} as {self.role}"


class InvitationState(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Invitation(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=new_invitation_id, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices)
    # SHA-256 of a 256-bit random token: the token itself is only ever shown once.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.CharField(max_length=128, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set by the expire_invitations job; rows are never deleted, so an old token still answers 410.
    expired_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["token_hash"])

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("resend_invitation", "Can resend an invitation"),
            ("revoke_invitation", "Can revoke an invitation"),
        ]
        indexes = [
            models.Index(
                fields=["org"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True, expired_at__isnull=True),
                name="invitation_open_idx",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True, expired_at__isnull=True),
                name="invitation_open_expiry_idx",
            ),
        ]

    def __str__(self):
        return f"{self.email} to {self.org_id} as {self.role}"

    def state_at(self, now) -> InvitationState:
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if self.expired_at is not None or self.expires_at <= now:
            return InvitationState.EXPIRED
        return InvitationState.PENDING


class ProductAPIKey(AbstractAPIKey):
    """A product's API key: stored hashed (SHA-512), revocable, never deleted."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="api_keys")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[APIKeyManager] = APIKeyManager()
    history = HistoricalRecords(excluded_fields=["hashed_key"])

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "product API key"
        verbose_name_plural = "product API keys"

    def delete(self, *args, **kwargs):
        raise ValueError("API keys are never deleted: revoke them.")


class ActorType(models.TextChoices):
    STAFF = "staff"
    PRODUCT = "product"
    STRIPE = "stripe"
    SYSTEM = "system"


class AuditCategory(models.TextChoices):
    ORGANIZATION = "organization"
    MEMBERSHIP = "membership"
    INVITATION = "invitation"
    PRODUCT = "product"
    CREDITS = "credits"
    BILLING = "billing"
    SUSPENSION = "suspension"
    SECURITY = "security"


class AuditEntry(AppendOnly, models.Model):
    """Append-only record of every state change: who, when, what before and after."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A task name, a Stripe event id, or a staff user's name kept beyond the account's life.
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    category = models.CharField(max_length=16, choices=AuditCategory.choices)
    org = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries"
    )
    # The product an entry is about when it is about no org: a change of the product's own terms.
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries"
    )
    subscription_id = models.CharField(max_length=255, blank=True)
    invoice_id = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["org", "-created_at"], name="audit_org_created_idx")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(category="security")
                    | Q(org__isnull=False)
                    | Q(product__isnull=False)
                    | ~Q(subscription_id="")
                    | ~Q(invoice_id="")
                    # Staff replaying a Stripe event about no org (a price, a product): the event
                    # names itself in `after`.
                    | Q(action="stripe_event.replayed")
                ),
                name="audit_entry_has_subject",
                violation_error_message="An audit entry names an org, product, subscription or invoice.",
            ),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"


class OutboxMessage(models.Model):
    """A side effect outside the database (a Stripe write, an email), decided in a transaction.

    Written in the transaction that decides it and performed after commit by `process_outbox`,
    so a lost worker or broker never loses one. `idempotency_key` is also the key sent to Stripe.
    """

    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=255, unique=True)
    org = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="outbox_messages"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    performed_at = models.DateTimeField(null=True, blank=True)
    # Set when the handler reported a permanent failure: kept for staff, never retried.
    failed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["available_at"],
                condition=Q(performed_at__isnull=True, failed_at__isnull=True),
                name="outbox_due_idx",
            ),
        ]

    def __str__(self):
        return f"{self.kind} #{self.pk}"

"""Read-only views on records staff look things up in: memberships, invitations, audit, outbox."""

from django.contrib import admin
from django.utils import timezone

from core.admin.history import HistoryAdmin
from core.admin.readonly import ReadOnlyAdmin
from orgs.models import AuditEntry, Invitation, Membership, OutboxMessage


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin, HistoryAdmin):
    list_display = ["user_id", "org", "role", "email", "joined_at", "product"]
    list_filter = ["role", "product"]
    list_select_related = ["org", "product"]
    search_fields = ["=user_id", "=email", "=org__public_id"]
    raw_id_fields = ["org"]
    show_full_result_count = False


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin, HistoryAdmin):
    list_display = ["email", "org", "role", "state", "created_at", "expires_at", "accepted_by"]
    list_select_related = ["org"]
    search_fields = ["=email", "=public_id", "=org__public_id"]
    exclude = ["token_hash"]
    show_full_result_count = False

    @admin.display
    def state(self, invitation):
        return invitation.state_at(timezone.now()).label


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "category",
        "action",
        "actor_type",
        "actor_label",
        "org",
        "product",
        "reason",
    ]
    list_filter = ["category", "actor_type"]
    list_select_related = ["org", "product"]
    search_fields = [
        "=org__public_id",
        "=product__slug",
        "=subscription_id",
        "=invoice_id",
        "=request_id",
        "action",
    ]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "org", "created_at", "attempts", "performed_at", "failed_at", "last_error"]
    list_filter = ["kind"]
    list_select_related = ["org"]
    search_fields = ["=idempotency_key", "=org__public_id"]
    show_full_result_count = False

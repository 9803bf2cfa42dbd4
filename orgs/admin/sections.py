"""orgs' sections of the organization's admin page: members, invitations, the recent audit trail."""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin.actions import ActionForm, ObjectAction, ReasonForm
from core.admin.readonly import ReadOnlyInline
from core.admin.sections import Section, organization_page
from core.admin.timeline import TimelineEntry, changes_between, history_entries
from orgs.models import AuditEntry, Invitation, Membership, Organization, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation, resend_invitation, revoke_invitation
from orgs.services.memberships import remove_membership, upsert_membership
from orgs.services.organizations import restore_organization


class MembershipInline(ReadOnlyInline):
    model = Membership
    fields = ("user_id", "role", "email", "joined_at", "product", "manage")
    readonly_fields = fields

    @admin.display(description="")
    def manage(self, membership):
        url = reverse("admin:orgs_organization_act", args=[membership.org_id, "remove-member"])
        return format_html('<a href="{}?user_id={}">remove…</a>', url, membership.user_id)


class InvitationInline(ReadOnlyInline):
    model = Invitation
    fields = ("email", "role", "state", "created_at", "expires_at", "accepted_by", "manage")
    readonly_fields = fields

    @admin.display
    def state(self, invitation):
        return invitation.state_at(timezone.now()).label

    @admin.display(description="")
    def manage(self, invitation):
        if invitation.accepted_at or invitation.revoked_at:
            return ""
        base = reverse("admin:orgs_organization_act", args=[invitation.org_id, "resend-invitation"])
        revoke = reverse("admin:orgs_organization_act", args=[invitation.org_id, "revoke-invitation"])
        return format_html(
            '<a href="{}?invitation={}">resend…</a> · <a href="{}?invitation={}">revoke…</a>',
            base,
            invitation.pk,
            revoke,
            invitation.pk,
        )


class RecentAuditInline(ReadOnlyInline):
    """The latest changes; the whole trail is one click away in the audit log."""

    model = AuditEntry
    fk_name = "org"
    limit = 50
    verbose_name_plural = "Recent audit entries (latest 50; the audit log has them all)"
    fields = ("created_at", "actor", "action", "reason", "changes")
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    @admin.display(description="before → after")
    def changes(self, entry):
        return format_html_join(
            mark_safe("<br>"),
            "{}: {} → {}",
            ((c.field, c.before, c.after) for c in changes_between(entry.before, entry.after)),
        )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor_user", "actor_product")

    @admin.display
    def actor(self, entry):
        return f"{entry.actor_type}: {entry.actor_label}"


# --- Forms for the object actions -------------------------------------------------------------


class UpsertMemberForm(ActionForm):
    user_id = forms.CharField(max_length=128, strip=False)
    role = forms.ChoiceField(choices=Role.choices)
    email = forms.EmailField(required=False)


class RemoveMemberForm(ReasonForm):
    user_id = forms.CharField(max_length=128, strip=False)
    field_order = ["user_id", "reason"]


class InviteForm(ActionForm):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices)


class InvitationChoiceForm(ActionForm):
    invitation = forms.ModelChoiceField(queryset=Invitation.objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        now = timezone.now()
        choices = Invitation.objects.filter(org=self.obj, accepted_at__isnull=True, revoked_at__isnull=True)
        self.fields["invitation"].queryset = choices
        self.fields["invitation"].label_from_instance = (
            lambda inv: f"{inv.email} as {inv.role} ({inv.state_at(now).label})"
        )


class RevokeInvitationForm(InvitationChoiceForm, ReasonForm):
    field_order = ["invitation", "reason"]


def _staff(request) -> Actor:
    return Actor.staff(request.user)


def _upsert_member(request, org, data):
    membership, created = upsert_membership(
        org=org,
        user_id=data["user_id"],
        role=data["role"],
        email=data["email"] or None,
        actor=_staff(request),
    )
    return f"{membership.user_id} is now {'a new' if created else 'an'} {membership.role} member."


def _remove_member(request, org, data):
    remove_membership(org=org, user_id=data["user_id"], actor=_staff(request), reason=data["reason"])
    return f"{data['user_id']} was removed."


def _invite(request, org, data):
    invitation, token = create_invitation(
        org=org, email=data["email"], role=data["role"], actor=_staff(request)
    )
    return f"Invitation for {invitation.email} created. Its token, shown only now: {token}"


def _resend(request, org, data):
    invitation, token = resend_invitation(invitation=data["invitation"], actor=_staff(request))
    return f"Invitation re-sent to {invitation.email} with a new token (shown only now): {token}"


def _revoke(request, org, data):
    invitation = revoke_invitation(
        invitation=data["invitation"], actor=_staff(request), reason=data["reason"]
    )
    return f"Invitation for {invitation.email} revoked."


def _restore(request, org, data):
    restore_organization(org=org, actor=_staff(request), reason=data["reason"])
    return f"{org.name} was restored."


def _has_members(org) -> bool:
    return Membership.objects.filter(org=org).exists()


def _has_open_invitations(org) -> bool:
    return Invitation.objects.filter(org=org, accepted_at__isnull=True, revoked_at__isnull=True).exists()


def _member_actions() -> list[ObjectAction]:
    group = "Members"
    return [
        ObjectAction(
            "upsert-member",
            "Add or change member",
            UpsertMemberForm,
            "orgs.change_membership",
            _upsert_member,
            group=group,
        ),
        ObjectAction(
            "remove-member",
            "Remove member",
            RemoveMemberForm,
            "orgs.delete_membership",
            _remove_member,
            applies=_has_members,
            group=group,
        ),
        ObjectAction(
            "invite", "Invite", InviteForm, "orgs.add_invitation", _invite, message_level=30, group=group
        ),
        ObjectAction(
            "resend-invitation",
            "Resend invitation",
            InvitationChoiceForm,
            "orgs.resend_invitation",
            _resend,
            applies=_has_open_invitations,
            message_level=30,
            group=group,
        ),
        ObjectAction(
            "revoke-invitation",
            "Revoke invitation",
            RevokeInvitationForm,
            "orgs.revoke_invitation",
            _revoke,
            applies=_has_open_invitations,
            group=group,
        ),
    ]


def _org_actions() -> list[ObjectAction]:
    return [
        ObjectAction(
            "restore",
            "Restore",
            ReasonForm,
            "orgs.soft_delete_organization",
            _restore,
            applies=lambda org: org.deleted_at is not None,
        ),
    ]


def _audit_timeline(org, limit: int) -> list[TimelineEntry]:
    entries = (
        AuditEntry.objects.filter(org=org)
        .select_related("actor_user", "actor_product")
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        TimelineEntry(
            at=entry.created_at,
            source="audit",
            what=entry.action,
            actor=f"{entry.actor_type}: {entry.actor_label}" if entry.actor_label else entry.actor_type,
            reason=entry.reason,
            changes=tuple(changes_between(entry.before, entry.after)),
        )
        for entry in entries
    ]


def _history_timeline(org, limit: int) -> list[TimelineEntry]:
    def latest(model, **match):
        return model.history.filter(**match).select_related("history_user").order_by("-history_date")[:limit]

    return [
        *history_entries(latest(Organization, id=org.pk), label="Organization"),
        *history_entries(latest(Membership, org_id=org.pk), label="Membership"),
        *history_entries(latest(Invitation, org_id=org.pk), label="Invitation"),
    ]


def _orgs_timeline(org, limit: int) -> list[TimelineEntry]:
    return [*_audit_timeline(org, limit), *_history_timeline(org, limit)]


def register_sections() -> None:
    """Called from OrgsConfig.ready."""
    organization_page.add(
        Section("members", order=20, inlines=(MembershipInline, InvitationInline), actions=_member_actions)
    )
    organization_page.add(
        Section(
            "audit",
            order=90,
            inlines=(RecentAuditInline,),
            actions=_org_actions,
            timeline=_orgs_timeline,
        )
    )

"""The failures of the orgs app: organizations, memberships and invitations."""

from core.errors import Conflict, Gone, NotFound, PaymentRequired


class OrgNotFound(NotFound):
    code = "org_not_found"
    message = "No such organization."


class NotAMember(NotFound):
    code = "not_a_member"
    message = "This user is not a member of the organization."


class SlugTaken(Conflict):
    code = "slug_taken"
    message = "This slug is already taken."


class LastOwner(Conflict):
    code = "last_owner"
    message = "An organization must keep at least one owner."


class SeatLimitReached(PaymentRequired):
    code = "seat_limit_reached"
    message = "The organization's plan has no free seat."


class InvitationNotFound(NotFound):
    code = "invitation_not_found"
    message = "No such invitation."


class InvitationExpired(Gone):
    code = "invitation_expired"
    message = "This invitation has expired."


class InvitationRevoked(Gone):
    code = "invitation_revoked"
    message = "This invitation was revoked."


class InvitationAlreadyAccepted(Conflict):
    code = "invitation_already_accepted"
    message = "This invitation was already accepted by another user."


class InvitationNotPending(Conflict):
    code = "invitation_not_pending"
    message = "Only a pending invitation can be changed."


class EndpointNotFound(NotFound):
    code = "endpoint_not_found"
    message = "No such event endpoint."


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"
    message = "No such event delivery."

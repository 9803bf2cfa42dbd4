"""The failures a service can report, each with a stable code and HTTP status.

One small hierarchy for the whole project: billing and usage subclass ServiceError too. The API
turns any of them into `{"error": {"code", "message", "details"}}` in one exception handler.
"""


class ServiceError(Exception):
    code = "error"
    status = 400
    message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, details: dict | None = None):
        self.message = message or self.message
        self.details = details or {}
        super().__init__(self.message)


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Gone(ServiceError):
    status = 410


class PaymentRequired(ServiceError):
    status = 402


class Forbidden(ServiceError):
    status = 403


class InvalidRequest(ServiceError):
    code = "invalid_request"
    message = "The request is invalid."


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


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    message = "This idempotency key was used with a different request."


class InvalidProductTerms(InvalidRequest):
    message = "These product terms are invalid."
    # details: {"fields": {field: message}}

"""The failures of the billing app: accounts, credits, holds, checkout, the catalog and Stripe."""

from typing import TYPE_CHECKING

from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, ServiceError

if TYPE_CHECKING:
    from billing.entitlements import Decision


class OrgHasActiveBilling(Conflict):
    code = "org_has_active_billing"
    message = "An organization with an active subscription or an open invoice cannot be deleted."


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    message = "This idempotency key was used with a different request."


class InvalidProductTerms(InvalidRequest):
    message = "These product terms are invalid."
    # details: {"fields": {field: message}}


class UnknownMetric(InvalidRequest):
    code = "unknown_metric"
    message = "The calling product has no price for this metric."


class GrantLimitExceeded(Forbidden):
    code = "grant_limit_exceeded"
    message = "This grant is larger than the granting party may give."


class HoldNotFound(NotFound):
    code = "hold_not_found"
    message = "No such hold."


class HoldNotActive(Conflict):
    code = "hold_not_active"
    message = "This hold is no longer active."


class EntitlementDenied(Exception):
    """The operation is not allowed; carries the decision so the answer can show the state."""

    def __init__(self, decision: "Decision") -> None:
        self.decision = decision
        super().__init__(decision.reason)


class CheckoutNotAMember(Forbidden):
    code = "not_a_member"
    message = "This user is not a member of the organization."


class InsufficientRole(Forbidden):
    code = "insufficient_role"
    message = "Only an owner, admin or billing member may start a checkout."


class SubscriptionExists(Conflict):
    code = "subscription_exists"
    message = "The organization already has an active subscription."


class StripeCatalogMissing(ServiceError):
    code = "stripe_catalog_missing"
    status = 503
    message = "This plan is not published to Stripe yet (run sync_stripe_catalog)."


class UnprocessableEvent(Exception):
    """A Stripe event this service can never process (bad input): recorded, never retried."""


class StripeEventNotReplayable(Conflict):
    code = "stripe_event_not_replayable"
    message = "Only a failed or stuck Stripe event can be replayed."


class NoSubscription(Conflict):
    code = "no_subscription"
    message = "The organization has no active subscription; start one with a checkout."


class PlanUnchanged(Conflict):
    code = "plan_unchanged"
    message = "The organization is already on (or already moving to) this plan."


class TopUpsUnavailable(ServiceError):
    code = "topups_unavailable"
    status = 503
    message = "Credit purchases are not offered: the catalog has no [topups] section."

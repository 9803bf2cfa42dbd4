from orgs.exceptions import Conflict, Forbidden, InvalidRequest, NotFound


class OrgHasActiveBilling(Conflict):
    code = "org_has_active_billing"
    message = "An organization with an active subscription or an open invoice cannot be deleted."


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

    def __init__(self, decision):
        self.decision = decision
        super().__init__(decision.reason)

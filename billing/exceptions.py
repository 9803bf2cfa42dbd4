from orgs.exceptions import Conflict


class OrgHasActiveBilling(Conflict):
    code = "org_has_active_billing"
    message = "An organization with an active subscription or an open invoice cannot be deleted."

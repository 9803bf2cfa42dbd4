"""What a Stripe subscription's status means here. Two sets, two names, one module."""

# Statuses whose prices decide the org's plan: it is paying (active) or owes a payment it may yet
# make (past_due). A trialing or incomplete subscription gives no plan.
PLAN_GIVING_STATUSES = frozenset({"active", "past_due"})

# Statuses of a subscription that still bills, or may yet bill, the customer: while one exists the
# org cannot open another checkout (409 subscription_exists) nor be soft-deleted.
BILLING_STATUSES = frozenset({*PLAN_GIVING_STATUSES, "trialing", "unpaid", "incomplete"})

"""What a Stripe subscription's status means here. Two sets, two names, one module."""

# Statuses whose prices decide the org's plan: it is paying (active) or owes a payment it may yet
# make (past_due). A trialing or incomplete subscription gives no plan.
PLAN_GIVING_STATUSES = frozenset({"active", "past_due"})

# Statuses of a subscription that still bills, or may yet bill, the customer: while one exists the
# org cannot open another checkout (409 subscription_exists) nor be soft-deleted.
BILLING_STATUSES = frozenset({*PLAN_GIVING_STATUSES, "trialing", "unpaid", "incomplete"})

# Subscription metadata saying why we asked Stripe to end it at its period end: a cancellation for
# a payment failure is undone once the invoice is paid; one for a plan change (to the default plan)
# is undone only by another plan change; any other (the customer's, staff's in Stripe) never.
CANCEL_REASON_KEY = "billing_cancel_reason"
CANCEL_FOR_PAYMENT_FAILURE = "payment_failure"
CANCEL_FOR_PLAN_CHANGE = "plan_change"

"""May this org do this now? The API's decision table as data: one list of rules, two views.

`decide` (the API's check and reserve) answers with the first rule that denies; `verdict` (the org's
admin page) lists every rule that denies today, each with what lifts it. Both read RULES, so the
page's "why is this org blocked?" can never disagree with what products receive.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from billing.models import PaymentStatus

OK = "ok"
# (status, message) per reason, in the table's order of precedence after org and metric. The one list
# of the reasons: the API's schema reads it (billing/api/entitlements.py).
DENIALS = {
    "not_a_member": (403, "This user is not a member of the organization."),
    "billing_suspended": (402, "The organization is suspended."),
    "payment_blocked": (402, "A metered invoice is unpaid: usage is blocked until it is paid."),
    "spend_cap_reached": (402, "This would take the month's overage past the organization's spend cap."),
    "insufficient_credits": (402, "The available balance does not cover the cost."),
}


@dataclass(frozen=True)
class EntitlementState:
    """Everything the decision reads, loaded in one query (billing.selectors.entitlement_state)."""

    org_pk: int
    role: str | None
    plan: str
    overage_allowed: bool
    payment_status: str
    suspended: bool
    posted: Decimal
    held: Decimal
    # Credits of grants already past expiry whose expiry entry is not posted yet.
    expired_unposted: Decimal
    metric_id: int
    credits_per_unit: Decimal
    billed_debt: Decimal = Decimal(0)
    # This month's allowance not granted yet (the job or the first debit of the month grants it).
    allowance_due: Decimal = Decimal(0)
    # The spend cap (None: none) and the billable overage already debited this month.
    spend_cap: Decimal | None = None
    month_overage: Decimal = Decimal(0)

    def overage_after(self, cost: Decimal) -> Decimal:
        """This month's overage once `cost` and the active holds are spent: what the balance (before
        holds) cannot cover becomes overage."""
        before_holds = self.available + self.held
        return self.month_overage + max(self.held + cost - max(before_holds, Decimal(0)), Decimal(0))

    def passes_cap(self, cost: Decimal) -> bool:
        return self.spend_cap is not None and self.overage_after(cost) > self.spend_cap

    @property
    def available(self) -> Decimal:
        return available_balance(
            posted=self.posted,
            billed_debt=self.billed_debt,
            allowance_due=self.allowance_due,
            held=self.held,
            expired_unposted=self.expired_unposted,
        )


def available_balance(
    *, posted: Decimal, billed_debt: Decimal, allowance_due: Decimal, held: Decimal, expired_unposted: Decimal
) -> Decimal:
    """What the org may spend now: posted, minus active holds and credits already expired, plus the
    month's allowance still due (usage in a month is covered by its allowance however late the grant
    comes) after the settlement of billed debt that precedes that grant."""
    settled = billed_debt if allowance_due > 0 else Decimal(0)
    return posted + settled + allowance_due - held - expired_unposted


@dataclass(frozen=True)
class Decision:
    reason: str
    state: EntitlementState
    quantity: Decimal
    cost: Decimal

    @property
    def allowed(self) -> bool:
        return self.reason == OK

    @property
    def status(self) -> int:
        return DENIALS[self.reason][0] if not self.allowed else 200

    @property
    def message(self) -> str:
        return DENIALS[self.reason][1] if not self.allowed else "Allowed."


@dataclass(frozen=True)
class Rule:
    """One row of the decision table: a reason code, when it denies, and, in plain words for staff,
    what it means and what lifts it."""

    reason: str
    denies: Callable[[EntitlementState, Decimal], bool]  # (state, cost of the call)
    words: str
    lifts: str
    per_user: bool = False  # about the calling user, not the org


# In the table's order of precedence (after org and metric, which raise before a state exists).
RULES: tuple[Rule, ...] = (
    Rule(
        "not_a_member",
        lambda state, cost: state.role is None,
        "the user is not a member of the organization",
        "Adding the user as a member lifts it.",
        per_user=True,
    ),
    Rule(
        "billing_suspended",
        lambda state, cost: state.suspended,
        "the organization is suspended",
        "Lifting the suspension lifts it.",
    ),
    Rule(
        "payment_blocked",
        lambda state, cost: state.payment_status == PaymentStatus.BLOCKED,
        "a metered invoice is unpaid",
        "Paying the invoice (or voiding it in Stripe) lifts it.",
    ),
    Rule(
        "spend_cap_reached",
        lambda state, cost: state.overage_allowed and state.passes_cap(cost),
        "this month's overage would pass the organization's spend cap",
        "Raising or removing the spend cap, or the next month, lifts it.",
    ),
    Rule(
        "insufficient_credits",
        lambda state, cost: not state.overage_allowed and state.available < cost,
        "the available balance does not cover the cost",
        "Granting credits, the next month's allowance or a plan with overage lifts it.",
    ),
)
assert [rule.reason for rule in RULES] == list(DENIALS), "RULES and DENIALS list the same reasons"


def decide(state: EntitlementState, *, quantity: Decimal, cost: Decimal) -> Decision:
    """The API's answer: the first rule that denies, else ok."""
    reason = next((rule.reason for rule in RULES if rule.denies(state, cost)), OK)
    return Decision(reason=reason, state=state, quantity=quantity, cost=cost)


def verdict(state: EntitlementState, *, cost: Decimal) -> list[Rule]:
    """Every rule that denies a call of this cost today, in precedence order (empty: allowed).
    Its first rule is always the one `decide` answers with."""
    return [rule for rule in RULES if rule.denies(state, cost)]

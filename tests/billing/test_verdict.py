"""One rule, two views: the API's decision (decide) and the org page's verdict read the same rules."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.entitlements import DENIALS, OK, RULES, EntitlementState, decide, verdict
from billing.models import PaymentStatus

credits = st.decimals(min_value=-1000, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
small = st.decimals(min_value=0, max_value=100, places=6, allow_nan=False, allow_infinity=False)

states = st.builds(
    EntitlementState,
    org_pk=st.just(1),
    role=st.sampled_from([None, "owner", "admin", "member"]),
    plan=st.sampled_from(["free", "pro"]),
    overage_allowed=st.booleans(),
    payment_status=st.sampled_from(PaymentStatus.values),
    suspended=st.booleans(),
    posted=credits,
    held=small,
    expired_unposted=small,
    metric_id=st.just(1),
    credits_per_unit=small,
    billed_debt=small,
    allowance_due=small,
)


def precedence_table(state: EntitlementState, cost: Decimal) -> str:
    """The decision table as the API contract states it, written out independently of RULES."""
    if state.role is None:
        return "not_a_member"
    if state.suspended:
        return "billing_suspended"
    if state.payment_status == PaymentStatus.BLOCKED:
        return "payment_blocked"
    if not state.overage_allowed and state.available < cost:
        return "insufficient_credits"
    return OK


@given(state=states, cost=small)
def test_decide_answers_with_the_first_rule_of_the_verdict(state, cost):
    denying = verdict(state, cost=cost)

    decision = decide(state, quantity=Decimal(1), cost=cost)

    assert decision.reason == (denying[0].reason if denying else OK)
    assert decision.reason == precedence_table(state, cost)
    assert decision.allowed == (not denying)


@given(state=states, cost=small)
def test_the_verdict_lists_every_reason_that_denies_in_precedence_order(state, cost):
    reasons = [rule.reason for rule in verdict(state, cost=cost)]

    expected = [
        reason
        for reason, denies in (
            ("not_a_member", state.role is None),
            ("billing_suspended", state.suspended),
            ("payment_blocked", state.payment_status == PaymentStatus.BLOCKED),
            ("insufficient_credits", not state.overage_allowed and state.available < cost),
        )
        if denies
    ]
    assert reasons == expected


def test_every_reason_has_words_and_what_lifts_it():
    assert [rule.reason for rule in RULES] == list(DENIALS)
    assert all(rule.words and rule.lifts for rule in RULES)

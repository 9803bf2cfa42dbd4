"""Entitlements (the product API: Entitlements, Holds): check, reserve, release."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.credits import credits_str, quantity
from billing.entitlements import DENIALS, OK, Decision, decide
from billing.exceptions import EntitlementDenied
from billing.pricing import bounded_cost
from billing.selectors import balances, key_and_entitlement_state
from billing.services.holds import release_hold, reserve_credits
from billing.services.receipts import record_denial
from core.api.parsing import EmptyBody, integer, parse_body, read_object, schema_for, text
from core.api.ratelimits import enforce
from core.api.schema import errors
from core.errors import ServiceError
from orgs.api.auth import KEYWORD, authenticate_key, presented_key, verified_product


class DecisionSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.ChoiceField(choices=[OK, *DENIALS])
    org_id = serializers.CharField()
    metric = serializers.CharField()
    quantity = serializers.CharField()
    cost = serializers.CharField()
    balance = serializers.CharField(help_text="Available balance: posted minus active holds.")
    posted_balance = serializers.CharField()
    plan = serializers.CharField()
    payment_status = serializers.CharField()
    error = serializers.DictField(required=False, help_text="On 402/403: `{code, message}`.")


def decision_response(decision: Decision, *, org_id: str, metric: str) -> Response:
    state = decision.state
    body = {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "org_id": org_id,
        "metric": metric,
        "quantity": credits_str(decision.quantity),
        "cost": credits_str(decision.cost),
        "balance": credits_str(state.available),
        "posted_balance": credits_str(state.posted),
        "plan": state.plan,
        "payment_status": state.payment_status,
    }
    if not decision.allowed:
        body["error"] = {"code": decision.reason, "message": decision.message}
    return Response(body, status=decision.status)


DECISION_ERRORS = errors(
    "400:unknown_field", "400:invalid_request", "400:unknown_metric", "404:org_not_found"
)


CHECK_FIELDS = {
    "org_id": text(64),
    "user_id": text(128),
    "metric": text(64),
    "quantity": quantity(default=Decimal(1)),
}
RESERVE_FIELDS = {
    **CHECK_FIELDS,
    "quantity": quantity(positive=True),
    "idempotency_key": text(255),
    "ttl_seconds": integer(minimum=1, maximum=86_400, default=900),
}


class EntitlementCheckView(APIView):
    # The body is read by CHECK_FIELDS (lean: the hot path); its schema is made from them.
    CheckSerializer = schema_for("EntitlementCheckRequest", CHECK_FIELDS)

    # The key is verified in the same query as the state (key_and_entitlement_state), so DRF's
    # authentication does not run here; the precedence stays 401 → 413 → 400 → the table.
    authentication_classes = []
    permission_classes = []

    def get_authenticate_header(self, request):
        return KEYWORD

    @extend_schema(
        operation_id="entitlements_check",
        summary="May this user do this now?",
        description=(
            "Decides from the org's membership, plan, payment status, suspension and available credits "
            "whether `quantity` units of `metric` may be used now. Writes nothing. 200 when allowed; "
            "402/403 with the same body and `error` when not."
        ),
        auth=[{"ApiKey": []}],  # type: ignore[list-item]  # drf-spectacular's hint: names; it takes these
        request=CheckSerializer,
        responses={
            200: DecisionSerializer,
            402: DecisionSerializer,
            403: DecisionSerializer,
            **DECISION_ERRORS,
        },
    )
    def post(self, request):
        presented = presented_key(request)
        try:
            data = read_object(request.data, CHECK_FIELDS)
        except (ServiceError, APIException):
            authenticate_key(presented)  # a bad key answers 401 before a bad body
            raise
        if presented is None:
            raise NotAuthenticated
        api_key, state_for = key_and_entitlement_state(
            prefix=presented.prefix, org_id=data["org_id"], user_id=data["user_id"], metric=data["metric"]
        )
        product = verified_product(presented, api_key)
        state = state_for(product)
        enforce(presented.prefix, "check")
        decision = decide(
            state, quantity=data["quantity"], cost=bounded_cost(data["quantity"], state.credits_per_unit)
        )
        if not decision.allowed:
            record_denial(
                decision=decision, product_id=product.pk, user_id=data["user_id"], metric=data["metric"]
            )
        return decision_response(decision, org_id=data["org_id"], metric=data["metric"])


class ReservationSerializer(serializers.Serializer):
    hold_id = serializers.CharField()
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    cost = serializers.CharField()
    balance = serializers.CharField(help_text="Available balance once this hold counts.")
    expires_at = serializers.DateTimeField()


class EntitlementReserveView(APIView):
    rate_limit_class = "check"
    ReserveSerializer = schema_for("EntitlementReserveRequest", RESERVE_FIELDS)

    @extend_schema(
        operation_id="entitlements_reserve",
        summary="Reserve credits for work about to run",
        description=(
            "Decides like the check and, when allowed, holds the cost until the hold is committed, "
            "released or expires (`ttl_seconds`). Idempotent on `idempotency_key`: the same key and body "
            "answer the same hold (200), another body is `409 idempotency_conflict`."
        ),
        request=ReserveSerializer,
        responses={
            200: ReservationSerializer,
            201: ReservationSerializer,
            402: DecisionSerializer,
            403: DecisionSerializer,
            **DECISION_ERRORS,
            **errors("409:idempotency_conflict"),
        },
    )
    def post(self, request):
        data = read_object(request.data, RESERVE_FIELDS)
        try:
            hold, created, decision = reserve_credits(product=request.user, **data)
        except EntitlementDenied as denied:
            record_denial(
                decision=denied.decision,
                product_id=request.user.pk,
                user_id=data["user_id"],
                metric=data["metric"],
            )
            return decision_response(denied.decision, org_id=data["org_id"], metric=data["metric"])
        balance = decision.state.available - hold.cost if created else balances(hold.org)[0]
        body = {
            "hold_id": hold.public_id,
            "allowed": True,
            "reason": "ok",
            "cost": credits_str(hold.cost),
            "balance": credits_str(balance),
            "expires_at": serializers.DateTimeField().to_representation(hold.expires_at),
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class HoldStateSerializer(serializers.Serializer):
    hold_id = serializers.CharField()
    state = serializers.CharField()


class HoldReleaseView(APIView):
    @extend_schema(
        operation_id="holds_release",
        summary="Release a hold",
        description=(
            "Gives a hold's credits back without recording usage. Releasing a released hold is harmless; "
            "a committed one is `409 hold_not_active`. Takes `{}` or no body."
        ),
        request=EmptyBody,
        responses={
            200: HoldStateSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:hold_not_found",
                "409:hold_not_active",
                "413:payload_too_large",
            ),
        },
    )
    def post(self, request, hold_id):
        parse_body(EmptyBody, request)
        hold = release_hold(product=request.user, hold_id=hold_id)
        return Response({"hold_id": hold.public_id, "state": hold.state})

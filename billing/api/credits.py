"""Credits (the product API: Credits): balance and grants, grant, credit policy."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.credits import CreditsField, credits_str
from billing.models import GrantType
from billing.pricing import ROUNDING_RULE
from billing.selectors import active_holds, balances, credit_purchases, current_prices, live_grants
from billing.services.grants import GRANTABLE, grant_credits
from core.api.parsing import StrictSerializer, parse_body
from core.api.schema import errors
from orgs.selectors import get_live_org
from orgs.services.audit import Actor


class GrantSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    grant_type = serializers.ChoiceField(choices=GrantType.choices)
    amount = CreditsField()
    remaining = CreditsField()
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    reason = serializers.CharField()


class HoldSummarySerializer(serializers.Serializer):
    hold_id = serializers.CharField(source="public_id")
    cost = CreditsField()
    expires_at = serializers.DateTimeField()


class PurchaseSerializer(serializers.Serializer):
    id = serializers.CharField(source="stripe_session_id", help_text="The Checkout session (cs_…).")
    credits = CreditsField()
    amount_cents = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.CharField(help_text="open, paid or refunded.")
    payment_intent = serializers.CharField(source="payment_intent_id", help_text="Empty until paid.")
    grant_id = serializers.CharField(source="grant.public_id", allow_null=True)
    refunded_cents = serializers.IntegerField()
    owed = CreditsField(help_text="Refunded credits that were already spent.")
    created_at = serializers.DateTimeField()


class CreditsSerializer(serializers.Serializer):
    balance = serializers.CharField(help_text="Available: posted balance minus active holds.")
    posted_balance = serializers.CharField()
    grants = GrantSerializer(many=True)
    holds = HoldSummarySerializer(many=True)
    purchases = PurchaseSerializer(many=True, help_text="Credit purchases, newest first (the last 50).")


class CreditsView(APIView):
    @extend_schema(
        operation_id="credits_retrieve",
        summary="Read an org's credits",
        description=(
            "The posted balance, the available balance (minus active holds), live grants and active holds."
        ),
        responses={200: CreditsSerializer, **errors("404:org_not_found")},
    )
    def get(self, request, org_id):
        org = get_live_org(org_id)
        now = timezone.now()
        available, posted = balances(org, now=now)
        return Response(
            {
                "balance": credits_str(available),
                "posted_balance": credits_str(posted),
                "grants": GrantSerializer(live_grants(org, now=now), many=True).data,
                "holds": HoldSummarySerializer(
                    active_holds(org.pk, now=now).order_by("expires_at"), many=True
                ).data,
                "purchases": PurchaseSerializer(credit_purchases(org), many=True).data,
            }
        )


class CreditGrantView(APIView):
    class CreateGrantSerializer(StrictSerializer):
        amount = CreditsField(min_value=0)
        grant_type = serializers.ChoiceField(choices=[(t.value, t.label) for t in GRANTABLE])
        reason = serializers.CharField(max_length=2000)
        idempotency_key = serializers.CharField(max_length=255)
        expires_at = serializers.DateTimeField(required=False)

        def validate_amount(self, value):
            if value <= 0:
                raise serializers.ValidationError("A grant is more than 0 credits.")
            return value

        def validate_expires_at(self, value):
            if value <= timezone.now():
                raise serializers.ValidationError("A grant expires in the future.")
            return value

    @extend_schema(
        operation_id="credits_grant",
        summary="Grant credits",
        description=(
            "Adds credits to the org's balance (a top-up or a goodwill grant), up to the product's grant "
            "limit. Idempotent on `idempotency_key`."
        ),
        request=CreateGrantSerializer,
        responses={
            200: GrantSerializer,
            201: GrantSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:org_not_found",
                "403:grant_limit_exceeded",
                "409:idempotency_conflict",
            ),
        },
    )
    def post(self, request, org_id):
        data = parse_body(self.CreateGrantSerializer, request)
        org = get_live_org(org_id)
        grant, created = grant_credits(org=org, **data, actor=Actor.for_product(request.user))
        return Response(
            GrantSerializer(grant).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class CreditPolicyMetricSerializer(serializers.Serializer):
    metric = serializers.CharField(source="key")
    unit = serializers.CharField()
    credits_per_unit = CreditsField()
    description = serializers.CharField()


class CreditPolicySerializer(serializers.Serializer):
    product = serializers.CharField()
    metrics = CreditPolicyMetricSerializer(many=True)
    rounding = serializers.CharField()


class CreditPolicyView(APIView):
    @extend_schema(
        operation_id="credit_policy_retrieve",
        summary="Read the credit policy",
        description="The calling product's metrics with their prices in force, and the rounding rule.",
        responses={200: CreditPolicySerializer, **errors()},
    )
    def get(self, request):
        product = request.user
        return Response(
            {
                "product": product.slug,
                "metrics": CreditPolicyMetricSerializer(current_prices(product), many=True).data,
                "rounding": ROUNDING_RULE,
            }
        )

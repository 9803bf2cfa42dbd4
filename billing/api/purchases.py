"""Credit purchases (the product API: Credits): prepaid credits bought through Stripe Checkout."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.credits import CreditsField
from billing.services.purchases import start_credit_purchase
from core.api.parsing import StrictSerializer, UserIdField, WebURLField, parse_body
from core.api.schema import errors
from orgs.selectors import get_live_org
from orgs.services.audit import Actor


class CreditPurchaseView(APIView):
    class CreatePurchaseSerializer(StrictSerializer):
        credits = CreditsField(help_text="Within the catalog's minimum and maximum per purchase.")
        user_id = UserIdField()
        success_url = WebURLField(help_text="Where Stripe sends the user after paying (http or https).")
        cancel_url = WebURLField(help_text="Where Stripe sends the user on cancel (http or https).")
        idempotency_key = serializers.CharField(max_length=255)

        def validate_credits(self, value):
            if value <= 0:
                raise serializers.ValidationError("A purchase is more than 0 credits.")
            return value

    class PurchaseCreatedSerializer(serializers.Serializer):
        id = serializers.CharField(help_text="The Stripe Checkout session id (cs_…).")
        url = serializers.URLField()

    @extend_schema(
        operation_id="credit_purchases_create",
        summary="Buy prepaid credits",
        description=(
            "Opens a Stripe Checkout session in payment mode, priced by the catalog's top-up terms (a "
            "minimum and a maximum per purchase); the user is sent to its `url`. The `purchase` grant "
            "is written once, when Stripe says the payment succeeded; a refund takes back what is "
            "unspent."
        ),
        request=CreatePurchaseSerializer,
        responses={
            201: PurchaseCreatedSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:org_not_found",
                "403:not_a_member",
                "403:insufficient_role",
                "409:idempotency_conflict",
                "503:topups_unavailable",
                "503:stripe_unavailable",
            ),
        },
    )
    def post(self, request, org_id):
        data = parse_body(self.CreatePurchaseSerializer, request)
        purchase = start_credit_purchase(
            org=get_live_org(org_id),
            credits=data["credits"],
            user_id=data["user_id"],
            success_url=data["success_url"],
            cancel_url=data["cancel_url"],
            idempotency_key=data["idempotency_key"],
            actor=Actor.for_product(request.user),
        )
        body = {"id": purchase.stripe_session_id, "url": purchase.url}
        return Response(self.PurchaseCreatedSerializer(body).data, status=status.HTTP_201_CREATED)

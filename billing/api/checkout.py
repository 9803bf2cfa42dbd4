"""Checkout (the product API: Checkout)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Plan
from billing.services.checkout import start_checkout
from core.api.parsing import StrictSerializer, UserIdField, WebURLField, parse_body
from core.api.schema import errors
from orgs.selectors import get_live_org
from orgs.services.audit import Actor


class CheckoutSessionView(APIView):
    class CreateCheckoutSerializer(StrictSerializer):
        plan = serializers.CharField(
            max_length=32, help_text="A paid plan of the catalog (one with a price)."
        )
        success_url = WebURLField(help_text="Where Stripe sends the user after paying (http or https).")
        cancel_url = WebURLField(help_text="Where Stripe sends the user on cancel (http or https).")
        user_id = UserIdField()

        def validate_plan(self, value: str) -> str:
            # The catalog's paid plans, read now: a plan added by load_catalog is sold at once.
            paid = sorted(Plan.objects.paid().values_list("name", flat=True))
            if value not in paid:
                raise serializers.ValidationError(f"One of the catalog's paid plans: {', '.join(paid)}.")
            return value

    class CheckoutCreatedSerializer(serializers.Serializer):
        id = serializers.CharField(help_text="The Stripe Checkout session id (cs_…).")
        url = serializers.URLField()

    @extend_schema(
        operation_id="checkout_sessions_create",
        summary="Start a Stripe Checkout",
        description=(
            "Opens a Stripe Checkout session for a paid plan; the user (an owner or admin of the org) is "
            "sent to its `url`. The plan changes when Stripe confirms the payment."
        ),
        request=CreateCheckoutSerializer,
        responses={
            201: CheckoutCreatedSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:org_not_found",
                "403:not_a_member",
                "403:insufficient_role",
                "409:subscription_exists",
                "503:stripe_unavailable",
            ),
        },
    )
    def post(self, request, org_id):
        data = parse_body(self.CreateCheckoutSerializer, request)
        org = get_live_org(org_id)
        session = start_checkout(
            org=org,
            plan_name=data["plan"],
            user_id=data["user_id"],
            success_url=data["success_url"],
            cancel_url=data["cancel_url"],
            actor=Actor.for_product(request.user),
        )
        return Response({"id": session.stripe_id, "url": session.url}, status=status.HTTP_201_CREATED)

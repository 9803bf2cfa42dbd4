"""Plan changes (the product API: Subscription)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Plan
from billing.selectors import get_live_org_with_account, pending_plan_change
from billing.services.plan_changes import request_plan_change
from core.api.parsing import StrictSerializer, UserIdField, parse_body
from core.api.schema import errors
from orgs.selectors import get_live_org
from orgs.services.audit import Actor


class SubscriptionChangeView(APIView):
    class ChangePlanSerializer(StrictSerializer):
        plan = serializers.CharField(
            max_length=32,
            help_text="A catalog plan: a higher one now, a lower one (or the default) at the period end.",
        )
        user_id = UserIdField()
        idempotency_key = serializers.CharField(
            max_length=255, help_text="The same key answers the same change; reuse it when retrying."
        )

        def validate_plan(self, value: str) -> str:
            names = sorted(Plan.objects.values_list("name", flat=True))
            if value not in names:
                raise serializers.ValidationError(f"One of the catalog's plans: {', '.join(names)}.")
            return value

    class PlanChangeSerializer(serializers.Serializer):
        plan = serializers.CharField(help_text="The plan in force now (Stripe's subscription gives it).")
        pending_plan = serializers.CharField(
            allow_null=True, help_text="The plan being moved to; null once done."
        )
        pending_plan_at = serializers.DateTimeField(allow_null=True, help_text="When it takes effect.")

    @extend_schema(
        operation_id="subscription_change",
        summary="Change the subscription's plan",
        description=(
            "An upgrade takes effect at once, the prorated difference charged now; a downgrade (to "
            "the default plan: a cancellation) at the period end, shown as `pending_plan` / "
            "`pending_plan_at` until then. The plan changes when Stripe's subscription says so. Needs "
            "a subscription (`409 no_subscription`: use checkout); the same plan is `409 "
            "plan_unchanged`."
        ),
        request=ChangePlanSerializer,
        responses={
            202: PlanChangeSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:org_not_found",
                "403:not_a_member",
                "403:insufficient_role",
                "409:no_subscription",
                "409:plan_unchanged",
                "409:idempotency_conflict",
                "503:stripe_catalog_missing",
                "503:stripe_unavailable",
            ),
        },
    )
    def post(self, request, org_id):
        data = parse_body(self.ChangePlanSerializer, request)
        request_plan_change(
            org=get_live_org(org_id),
            plan_name=data["plan"],
            user_id=data["user_id"],
            idempotency_key=data["idempotency_key"],
            actor=Actor.for_product(request.user),
        )
        org = get_live_org_with_account(org_id)  # as it is now: an upgrade may be done already
        pending = pending_plan_change(org)
        body = {
            "plan": org.billing_account.plan.name,
            "pending_plan": pending.to_plan.name if pending else None,
            "pending_plan_at": pending.effective_at if pending else None,
        }
        return Response(self.PlanChangeSerializer(body).data, status=status.HTTP_202_ACCEPTED)

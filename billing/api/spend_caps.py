"""Spend caps (the product API: Credits)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.credits import CreditsField, credits_str
from billing.periods import month_of
from billing.services.spend_caps import set_spend_cap
from core.api.parsing import StrictSerializer, UserIdField, parse_body
from core.api.schema import errors
from orgs.selectors import get_live_org
from orgs.services.audit import Actor


class SpendCapView(APIView):
    class SetSpendCapSerializer(StrictSerializer):
        monthly_overage_credits = CreditsField(
            allow_null=True, min_value=0, help_text="The most billable overage credits a month; null: no cap."
        )
        user_id = UserIdField()

    class SpendCapSerializer(serializers.Serializer):
        monthly_overage_credits = serializers.CharField(allow_null=True)
        month_overage = serializers.CharField(help_text="Billable overage debited this month (UTC).")

    @extend_schema(
        operation_id="spend_cap_update",
        summary="Set or remove the monthly spend cap",
        description=(
            "Caps this calendar month's billable overage (UTC): once the overage plus a call's cost "
            "would pass it, `entitlements:check` and `:reserve` answer `402 spend_cap_reached`; usage "
            "reported anyway is still recorded and billed. `null` removes the cap. Owners, admins and "
            "billing members only."
        ),
        request=SetSpendCapSerializer,
        responses={
            200: SpendCapSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:org_not_found",
                "403:not_a_member",
                "403:insufficient_role",
            ),
        },
    )
    def put(self, request, org_id):
        data = parse_body(self.SetSpendCapSerializer, request)
        balance = set_spend_cap(
            org=get_live_org(org_id),
            monthly_overage_credits=data["monthly_overage_credits"],
            user_id=data["user_id"],
            actor=Actor.for_product(request.user),
        )
        this_month = balance.overage_month == month_of(timezone.now())
        cap = balance.monthly_overage_cap
        body = {
            "monthly_overage_credits": credits_str(cap) if cap is not None else None,
            "month_overage": credits_str(balance.month_overage if this_month else 0),
        }
        return Response(self.SpendCapSerializer(body).data)

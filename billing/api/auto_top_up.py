"""Automatic top-ups (the product API: Credits)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.credits import CreditsField, credits_str
from billing.services.auto_top_up import set_auto_top_up
from core.api.parsing import StrictSerializer, UserIdField, parse_body
from core.api.schema import errors
from orgs.selectors import get_live_org
from orgs.services.audit import Actor


class AutoTopUpView(APIView):
    class SetAutoTopUpSerializer(StrictSerializer):
        threshold_credits = CreditsField(
            allow_null=True,
            min_value=0,
            help_text="Buy when the available balance falls below this; null: off.",
        )
        credits = CreditsField(allow_null=True, help_text="Credits bought each time; null: off.")
        user_id = UserIdField()

    class AutoTopUpSerializer(serializers.Serializer):
        threshold_credits = serializers.CharField(allow_null=True)
        credits = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="auto_top_up_update",
        summary="Set or turn off automatic top-ups",
        description=(
            "When the org's available balance falls below `threshold_credits`, one purchase of "
            "`credits` is charged to the card of the org's last paid purchase, at most once per "
            "crossing; `null` turns it off. Owners, admins and billing members only."
        ),
        request=SetAutoTopUpSerializer,
        responses={
            200: AutoTopUpSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:org_not_found",
                "403:not_a_member",
                "403:insufficient_role",
                "503:topups_unavailable",
            ),
        },
    )
    def put(self, request, org_id):
        data = parse_body(self.SetAutoTopUpSerializer, request)
        balance = set_auto_top_up(
            org=get_live_org(org_id),
            threshold_credits=data["threshold_credits"],
            credits=data["credits"],
            user_id=data["user_id"],
            actor=Actor.for_product(request.user),
        )
        threshold, credits = balance.auto_top_up_threshold, balance.auto_top_up_credits
        body = {
            "threshold_credits": credits_str(threshold) if threshold is not None else None,
            "credits": credits_str(credits) if credits is not None else None,
        }
        return Response(self.AutoTopUpSerializer(body).data)

"""Organizations as products see them (the product API: Organizations)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.selectors import get_live_org_with_account, pending_plan_change
from billing.services.accounts import open_organization
from core.api.parsing import StrictSerializer, UserIdField, parse_body
from core.api.schema import errors
from orgs.models import Organization
from orgs.services.audit import Actor


class OrganizationSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    name = serializers.CharField()
    slug = serializers.CharField()
    billing_email = serializers.EmailField()
    plan = serializers.CharField(source="billing_account.plan.name")
    payment_status = serializers.CharField(source="billing_account.payment_status")
    suspended = serializers.BooleanField(source="billing_account.suspended")
    pending_plan = serializers.CharField(
        source="pending_change.to_plan.name",
        allow_null=True,
        help_text="The plan a requested change moves to, until Stripe's subscription gives it; else null.",
    )
    pending_plan_at = serializers.DateTimeField(
        source="pending_change.effective_at",
        allow_null=True,
        help_text="When the pending plan takes effect (now for an upgrade, else the period end); else null.",
    )
    created_at = serializers.DateTimeField()


def organization_body(org: Organization) -> dict:
    org.pending_change = pending_plan_change(org)  # type: ignore[attr-defined]
    return OrganizationSerializer(org).data


class OrganizationCreateView(APIView):
    class CreateOrganizationSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200)
        billing_email = serializers.EmailField(max_length=254)
        slug = serializers.SlugField(max_length=64, required=False)
        owner_user_id = UserIdField(required=False)
        owner_email = serializers.EmailField(required=False, max_length=254)

        def validate_slug(self, value):
            if value != value.lower():
                raise serializers.ValidationError("A slug is lowercase.")
            return value

    @extend_schema(
        operation_id="orgs_create",
        summary="Create an organization",
        description="Creates the org with its owner and a billing account on the default plan.",
        request=CreateOrganizationSerializer,
        responses={
            201: OrganizationSerializer,
            **errors("400:unknown_field", "400:invalid_request", "409:slug_taken"),
        },
    )
    def post(self, request):
        data = parse_body(self.CreateOrganizationSerializer, request)
        org = open_organization(**data, actor=Actor.for_product(request.user))
        return Response(organization_body(org), status=status.HTTP_201_CREATED)


class OrganizationDetailView(APIView):
    @extend_schema(
        operation_id="orgs_retrieve",
        summary="Read an organization",
        description="The org's name, owner, plan and payment status. A deleted org is `404 org_not_found`.",
        responses={200: OrganizationSerializer, **errors("404:org_not_found")},
    )
    def get(self, request, org_id):
        return Response(organization_body(get_live_org_with_account(org_id)))

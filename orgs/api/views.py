"""Members and invitations (the product API: Members). Views translate HTTP and call one service."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.parsing import StrictSerializer, UserIdField, parse_body
from core.api.schema import errors
from orgs.models import Membership, Role
from orgs.selectors import get_live_org, get_membership, list_memberships
from orgs.services.audit import Actor
from orgs.services.invitations import accept_invitation, create_invitation
from orgs.services.memberships import remove_membership, upsert_membership


class MembershipSerializer(serializers.ModelSerializer):
    org_id = serializers.CharField(source="org.public_id")
    email = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["org_id", "user_id", "role", "email", "joined_at"]

    def get_email(self, membership) -> str | None:
        return membership.email or None


class MembershipWriteSerializer(MembershipSerializer):
    created = serializers.SerializerMethodField()

    class Meta(MembershipSerializer.Meta):
        fields = [*MembershipSerializer.Meta.fields, "created"]

    def get_created(self, membership) -> bool:
        return self.context["created"]


def membership_response(membership: Membership, created: bool) -> Response:
    body = MembershipWriteSerializer(membership, context={"created": created}).data
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MemberUpsertView(APIView):
    class UpsertMemberSerializer(StrictSerializer):
        user_id = UserIdField()
        role = serializers.ChoiceField(choices=Role.choices)
        email = serializers.EmailField(required=False, max_length=254)

    @extend_schema(
        operation_id="members_upsert",
        request=UpsertMemberSerializer,
        responses={
            200: MembershipWriteSerializer,
            201: MembershipWriteSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:org_not_found",
                "402:seat_limit_reached",
                "409:last_owner",
            ),
        },
    )
    def post(self, request, org_id):
        data = parse_body(self.UpsertMemberSerializer, request)
        org = get_live_org(org_id)
        membership, created = upsert_membership(org=org, **data, actor=Actor.for_product(request.user))
        return membership_response(membership, created)


class MemberPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class MemberListView(APIView):
    @extend_schema(
        operation_id="members_list",
        responses={200: MembershipSerializer(many=True), **errors("404:org_not_found")},
    )
    def get(self, request, org_id):
        org = get_live_org(org_id)
        paginator = MemberPagination()
        page = paginator.paginate_queryset(list_memberships(org).select_related("org"), request, view=self)
        return paginator.get_paginated_response(MembershipSerializer(page, many=True).data)


class MemberDetailView(APIView):
    @extend_schema(
        operation_id="members_retrieve",
        responses={200: MembershipSerializer, **errors("404:org_not_found", "404:not_a_member")},
    )
    def get(self, request, org_id, user_id):
        org = get_live_org(org_id)
        return Response(MembershipSerializer(get_membership(org, user_id)).data)

    @extend_schema(
        operation_id="members_remove",
        responses={204: None, **errors("404:org_not_found", "404:not_a_member", "409:last_owner")},
    )
    def delete(self, request, org_id, user_id):
        org = get_live_org(org_id)
        remove_membership(org=org, user_id=user_id, actor=Actor.for_product(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationCreateView(APIView):
    class CreateInvitationSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)
        role = serializers.ChoiceField(choices=Role.choices)

    class InvitationCreatedSerializer(serializers.Serializer):
        id = serializers.CharField()
        email = serializers.EmailField()
        role = serializers.CharField()
        expires_at = serializers.DateTimeField()
        token = serializers.CharField(help_text="Shown only in this response; stored hashed.")

    @extend_schema(
        operation_id="invitations_create",
        request=CreateInvitationSerializer,
        responses={
            201: InvitationCreatedSerializer,
            **errors(
                "400:unknown_field", "400:invalid_request", "404:org_not_found", "402:seat_limit_reached"
            ),
        },
    )
    def post(self, request, org_id):
        data = parse_body(self.CreateInvitationSerializer, request)
        org = get_live_org(org_id)
        invitation, token = create_invitation(org=org, **data, actor=Actor.for_product(request.user))
        body = self.InvitationCreatedSerializer(
            {
                "id": invitation.public_id,
                "email": invitation.email,
                "role": invitation.role,
                "expires_at": invitation.expires_at,
                "token": token,
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


class InvitationAcceptView(APIView):
    class AcceptInvitationSerializer(StrictSerializer):
        token = serializers.CharField(max_length=200)
        user_id = UserIdField()
        email = serializers.EmailField(required=False, max_length=254)

    @extend_schema(
        operation_id="invitations_accept",
        request=AcceptInvitationSerializer,
        responses={
            200: MembershipWriteSerializer,
            201: MembershipWriteSerializer,
            **errors(
                "400:unknown_field",
                "400:invalid_request",
                "404:invitation_not_found",
                "409:invitation_already_accepted",
                "410:invitation_expired",
                "410:invitation_revoked",
                "402:seat_limit_reached",
            ),
        },
    )
    def post(self, request):
        data = parse_body(self.AcceptInvitationSerializer, request)
        membership, created = accept_invitation(**data, actor=Actor.for_product(request.user))
        return membership_response(membership, created)


class PingView(APIView):
    """Which product a key belongs to: lets a product check its key (and is the cheapest
    authenticated request, the baseline of bench/check)."""

    class PingSerializer(serializers.Serializer):
        product = serializers.CharField()

    @extend_schema(operation_id="ping", responses={200: PingSerializer, **errors()})
    def get(self, request):
        return Response({"product": request.user.slug})

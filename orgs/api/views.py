"""Members and invitations (the product API: Members). Views translate HTTP and call one service."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.parsing import StrictSerializer, UserIdField, parse_body
from core.api.schema import CURSOR, errors, page_of
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
        summary="Add or update a member",
        description=(
            "Adds the user to the org with the role, or changes the role of a member. Needs a free seat "
            "for a new member (`403 seat_limit_reached`); an org keeps an owner (`409 last_owner`). "
            "Calling it again with the same body changes nothing."
        ),
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


MembersPageSerializer = page_of("MembersPage", MembershipSerializer)


class MemberListView(APIView):
    @extend_schema(
        operation_id="members_list",
        summary="List an org's members",
        description=(
            "The org's members, oldest first, a page at a time (`{next, previous, results}`; follow "
            "`next` until it is null). `page_size` 1 to 1000, default 100."
        ),
        parameters=[
            CURSOR,
            OpenApiParameter("page_size", int, description="Members per page, 1 to 1000 (default 100)."),
        ],
        responses={200: MembersPageSerializer, **errors("404:org_not_found", "404:not_found")},
    )
    def get(self, request, org_id):
        org = get_live_org(org_id)
        paginator = MemberPagination()
        page = paginator.paginate_queryset(list_memberships(org).select_related("org"), request, view=self)
        return paginator.get_paginated_response(MembershipSerializer(page, many=True).data)


class MemberDetailView(APIView):
    @extend_schema(
        operation_id="members_retrieve",
        summary="Read one member",
        description=(
            "The member's role and when they joined; a user who is not a member is `404 not_a_member`."
        ),
        responses={200: MembershipSerializer, **errors("404:org_not_found", "404:not_a_member")},
    )
    def get(self, request, org_id, user_id):
        org = get_live_org(org_id)
        return Response(MembershipSerializer(get_membership(org, user_id)).data)

    @extend_schema(
        operation_id="members_remove",
        summary="Remove a member",
        description=(
            "Removes the user from the org; the last owner cannot be removed (`409 last_owner`). Removing"
            " someone who is not a member is `404 not_a_member`."
        ),
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
        summary="Invite someone by email",
        description=(
            "Sends an invitation email to join the org with the role. A pending invitation takes a seat "
            "until it is accepted or expires."
        ),
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
        summary="Accept an invitation",
        description=(
            "The invited user joins the org with the invited role, in one step; the token comes from the "
            "invitation email. Accepting twice with the same user answers the same membership."
        ),
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

    @extend_schema(
        operation_id="ping",
        summary="Check the API key",
        description=(
            "Answers which product the key belongs to: the cheapest authenticated call, for health checks."
        ),
        responses={200: PingSerializer, **errors()},
    )
    def get(self, request):
        return Response({"product": request.user.slug})

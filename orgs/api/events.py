"""Events to products (the product API: Events to products): endpoints and deliveries.

Views translate HTTP and call one service; the bodies are read by the API kit's strict serializers.
"""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.parsing import EmptyBody, StrictSerializer, WebURLField, parse_body
from core.api.schema import CURSOR, errors, page_of
from core.errors import InvalidRequest
from orgs.models import EventDelivery, EventEndpoint, EventType
from orgs.selectors import product_deliveries, product_endpoints
from orgs.services.audit import Actor
from orgs.services.event_delivery import retry_delivery
from orgs.services.event_endpoints import (
    create_endpoint,
    delete_endpoint,
    product_delivery,
    product_endpoint,
    rotate_secret,
)

EVENT_TYPES_HELP = "One or more of: " + ", ".join(f"`{t}`" for t in EventType.values) + "."
SIGNING_KEY_HELP = (
    "The signing secret (`whsec_…`, Standard Webhooks). Shown in this answer only: store it. "
    "Verify every delivery with it, e.g. `standardwebhooks.Webhook(secret).verify(body, headers)`."
)


class EndpointSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id", help_text="`ep_…`")
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField(), help_text=EVENT_TYPES_HELP)
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    disabled_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Set when the endpoint failed for three days in a row: nothing is sent to it until a "
        "retried delivery (`POST /event-deliveries/{id}:retry`) reaches it with a 2xx.",
    )


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text=SIGNING_KEY_HELP)


class EndpointPage(serializers.Serializer):
    results = EndpointSerializer(many=True)


PRIVATE_URL_MESSAGE = "The host 'hooks.internal' resolves to a private, loopback or link-local address."
ENDPOINT_EXAMPLE = {
    "id": "ep_9f2kq7wz1m4x8c3v6b0n5t2r",
    "url": "https://red.example/hooks/billing",
    "event_types": ["org.suspended", "org.unsuspended", "credits.low"],
    "description": "Red's billing listener",
    "created_at": "2026-11-18T10:00:00Z",
    "disabled_at": None,
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


def endpoint_body(endpoint: EventEndpoint, *, with_secret: bool = False) -> dict:
    serializer = EndpointWithSecretSerializer if with_secret else EndpointSerializer
    return serializer(endpoint).data


class EndpointListView(APIView):
    class CreateEndpointSerializer(StrictSerializer):
        url = WebURLField(
            max_length=2048,
            help_text="Where events are POSTed. In live mode: `https`, and the host must resolve to public "
            "addresses only (never private, loopback or link-local).",
        )
        event_types = serializers.ListField(
            child=serializers.ChoiceField(choices=EventType.choices),
            allow_empty=False,
            help_text=EVENT_TYPES_HELP,
        )
        description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="event_endpoints_create",
        summary="Register an endpoint for events",
        description="Registers a URL that receives the chosen event types, signed per Standard Webhooks "
        "(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "
        "id.timestamp.body>`). Org events come for every org; `member.*` only for orgs this product "
        "has written about through the API. The secret appears in this answer only.",
        request=CreateEndpointSerializer,
        responses={
            201: EndpointWithSecretSerializer,
            **errors("400:unknown_field", "400:invalid_request"),
        },
        examples=[
            OpenApiExample(
                "Register",
                request_only=True,
                value={
                    "url": "https://red.example/hooks/billing",
                    "event_types": ["org.suspended", "org.unsuspended", "credits.low"],
                    "description": "Red's billing listener",
                },
            ),
            OpenApiExample("Registered", response_only=True, status_codes=["201"], value=ENDPOINT_EXAMPLE),
            OpenApiExample(
                "Refused in live mode",
                response_only=True,
                status_codes=["400"],
                value={
                    "error": {
                        "code": "invalid_request",
                        "message": "The request is invalid.",
                        "details": {"fields": {"url": [PRIVATE_URL_MESSAGE]}},
                    }
                },
            ),
        ],
    )
    def post(self, request):
        data = parse_body(self.CreateEndpointSerializer, request)
        endpoint = create_endpoint(product=request.user, **data, actor=Actor.for_product(request.user))
        return Response(endpoint_body(endpoint, with_secret=True), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="event_endpoints_list",
        summary="List this product's endpoints",
        description="The calling product's endpoints, newest first, without their secrets.",
        responses={200: EndpointPage, **errors()},
        examples=[
            OpenApiExample(
                "Endpoints",
                response_only=True,
                value={"results": [{k: v for k, v in ENDPOINT_EXAMPLE.items() if k != "secret"}]},
            )
        ],
    )
    def get(self, request):
        return Response({"results": [endpoint_body(e) for e in product_endpoints(request.user)]})


class EndpointDetailView(APIView):
    @extend_schema(
        operation_id="event_endpoints_delete",
        summary="Delete an endpoint",
        description="Nothing more is sent to it; its pending deliveries end. Another product's endpoint, "
        "or one already deleted, is `404 endpoint_not_found`.",
        responses={204: None, **errors("404:endpoint_not_found")},
    )
    def delete(self, request, endpoint_id):
        delete_endpoint(product=request.user, endpoint_id=endpoint_id, actor=Actor.for_product(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateView(APIView):
    @extend_schema(
        operation_id="event_endpoints_rotate_secret",
        summary="Rotate an endpoint's secret",
        description="A new secret, shown in this answer only. For 24 hours deliveries carry two "
        "signatures (`v1,<new> v1,<old>`), so a receiver still holding the old secret verifies them "
        "while it is updated.",
        request=EmptyBody,
        responses={
            200: EndpointWithSecretSerializer,
            **errors("400:unknown_field", "404:endpoint_not_found"),
        },
        examples=[
            OpenApiExample("Rotated", response_only=True, status_codes=["200"], value=ENDPOINT_EXAMPLE)
        ],
    )
    def post(self, request, endpoint_id):
        parse_body(EmptyBody, request)
        endpoint = rotate_secret(
            product=request.user, endpoint_id=endpoint_id, actor=Actor.for_product(request.user)
        )
        return Response(endpoint_body(endpoint, with_secret=True))


class DeliverySerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id", help_text="`dlv_…`")
    endpoint_id = serializers.CharField(source="endpoint.public_id")
    event_id = serializers.CharField(source="event.public_id", help_text="The `webhook-id` header; `ev_…`.")
    event_type = serializers.CharField(source="event.event_type")
    status = serializers.ChoiceField(
        choices=["pending", "delivered", "failed"],
        help_text="`failed`: given up after three days, or the endpoint was disabled or deleted.",
    )
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    next_attempt_at = serializers.SerializerMethodField()
    delivered_at = serializers.DateTimeField(allow_null=True)

    def get_next_attempt_at(self, delivery: EventDelivery) -> str | None:
        if delivery.status != "pending":
            return None
        return serializers.DateTimeField().to_representation(delivery.next_attempt_at)


class DeliveryPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


DELIVERY_EXAMPLE = {
    "id": "dlv_3m8x1c5v7b9n2q4w6e0r8t1y",
    "endpoint_id": "ep_9f2kq7wz1m4x8c3v6b0n5t2r",
    "event_id": "ev_7h2j4k6m8n0p1q3r5s7t9v2w",
    "event_type": "org.suspended",
    "status": "pending",
    "attempts": 2,
    "last_status_code": 503,
    "next_attempt_at": "2026-11-18T10:02:00Z",
    "delivered_at": None,
}


class DeliveryListView(APIView):
    @extend_schema(
        operation_id="event_deliveries_list",
        summary="List deliveries to this product's endpoints",
        description="Newest first, cursor-paginated (`next`, `previous`). Filter by endpoint and event type.",
        parameters=[
            OpenApiParameter("endpoint_id", str, description="An endpoint of this product (`ep_…`)."),
            OpenApiParameter("event_type", str, enum=EventType.values),
            CURSOR,
        ],
        responses={
            200: page_of("DeliveriesPage", DeliverySerializer),
            **errors("400:invalid_request", "404:endpoint_not_found", "404:not_found"),
        },
        examples=[
            OpenApiExample(
                "Deliveries",
                response_only=True,
                value={"next": None, "previous": None, "results": [DELIVERY_EXAMPLE]},
            )
        ],
    )
    def get(self, request):
        endpoint_id = request.query_params.get("endpoint_id")
        event_type = request.query_params.get("event_type")
        if event_type is not None and event_type not in EventType.values:
            raise InvalidRequest(
                details={"fields": {"event_type": [f"Not an event type: {EVENT_TYPES_HELP}"]}}
            )
        endpoint = product_endpoint(product=request.user, endpoint_id=endpoint_id) if endpoint_id else None
        deliveries = product_deliveries(request.user, endpoint=endpoint, event_type=event_type)
        paginator = DeliveryPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


class DeliveryRetryView(APIView):
    @extend_schema(
        operation_id="event_deliveries_retry",
        summary="Send a delivery again",
        description="Sends it again now, whatever its state (a delivered one is replayed with the same "
        "`webhook-id`, so a receiver that deduplicates ignores it). On a disabled endpoint a 2xx "
        "enables the endpoint again.",
        request=EmptyBody,
        responses={
            202: DeliverySerializer,
            **errors("400:unknown_field", "404:delivery_not_found"),
        },
        examples=[
            OpenApiExample(
                "Queued",
                response_only=True,
                status_codes=["202"],
                value={**DELIVERY_EXAMPLE, "next_attempt_at": "2026-11-18T10:00:00Z"},
            )
        ],
    )
    def post(self, request, delivery_id):
        parse_body(EmptyBody, request)
        delivery = product_delivery(product=request.user, delivery_id=delivery_id)
        delivery = retry_delivery(delivery=delivery, actor=Actor.for_product(request.user))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

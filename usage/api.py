"""Usage (the product API: Usage) and hold commit, which records usage."""

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.credits import CreditsField, credits_str
from core.api.parsing import PayloadTooLarge, StrictSerializer, UnknownField, parse_body
from core.api.schema import errors
from core.errors import InvalidRequest
from core.instants import parse_instant
from core.replicas import replica_reads
from orgs.selectors import get_live_org
from usage.selectors import usage_summary
from usage.services.events import record_usage_events
from usage.services.holds import commit_hold

MAX_EVENTS = 1000


class EventSerializer(serializers.Serializer):
    """One usage event (documentation only: a batch is validated in one plain pass)."""

    event_id = serializers.CharField(max_length=128, help_text="The product's idempotency key.")
    org_id = serializers.CharField()
    metric = serializers.CharField()
    quantity = serializers.CharField(help_text="A decimal string or number, ≥ 0, at most 6 decimal places.")
    occurred_at = serializers.DateTimeField()
    user_id = serializers.CharField(max_length=128, required=False)
    properties = serializers.DictField(required=False)


class EventBatchSerializer(serializers.Serializer):
    events = EventSerializer(many=True)


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class UsageEventsView(APIView):
    @extend_schema(
        operation_id="usage_events_record",
        summary="Record usage events",
        description=(
            "Records 1 to 1000 usage events and debits their cost. Idempotent per `event_id`: a known one"
            " is counted as a duplicate, never charged twice. All or nothing: if any new event is "
            "invalid, nothing is stored and `details.events` lists them by index."
        ),
        request=EventBatchSerializer,
        responses={
            202: IngestResultSerializer,
            **errors("400:unknown_field", "400:invalid_request", "413:payload_too_large"),
        },
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise InvalidRequest("The body is a JSON object with `events`.")
        events = body.get("events")
        if isinstance(events, list) and len(events) > MAX_EVENTS:
            raise PayloadTooLarge(
                f"At most {MAX_EVENTS} events per request.", details={"max_events": MAX_EVENTS}
            )
        unknown = sorted(key for key in body if key != "events")
        if unknown:
            raise UnknownField.naming(unknown)
        if not isinstance(events, list) or not events:
            raise InvalidRequest(details={"fields": {"events": ["A list of 1 to 1000 events."]}})
        result = record_usage_events(product=request.user, events=events)
        return Response(result, status=status.HTTP_202_ACCEPTED)


def _instant(value: str, field: str) -> datetime:
    """A date (its UTC midnight) or an RFC 3339 instant."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        instant = parse_instant(value)
    except ValueError:
        instant = None
    if instant is None:
        raise InvalidRequest(details={"fields": {field: ["A date (YYYY-MM-DD) or an RFC 3339 instant."]}})
    return instant


def _days_before(end: datetime, days: int) -> datetime:
    try:
        return end - timedelta(days=days)
    except OverflowError:
        message = "Too early: `from` would fall before year 1."
        raise InvalidRequest(details={"fields": {"to": [message]}}) from None


def _usage_row(row: Mapping[str, Any]) -> dict[str, str]:
    return {
        "metric": row["metric"],
        "quantity": credits_str(row["quantity"]),
        "cost": credits_str(row["cost"]),
    }


class UsageSummaryView(APIView):
    class SummaryRowSerializer(serializers.Serializer):
        metric = serializers.CharField()
        quantity = serializers.CharField()
        cost = serializers.CharField()

    class DailyRowSerializer(SummaryRowSerializer):
        date = serializers.DateField()

    # `from` is a Python keyword: the answer's serializer is built with type().
    SummarySerializer = type(
        "UsageSummarySerializer",
        (serializers.Serializer,),
        {
            "from": serializers.DateTimeField(help_text="The start used (inclusive)."),
            "to": serializers.DateTimeField(help_text="The end used (exclusive)."),
            "totals": SummaryRowSerializer(many=True),
            "daily": DailyRowSerializer(many=True),
        },
    )

    @extend_schema(
        operation_id="usage_summary",
        summary="Read an org's usage",
        description=(
            "Totals and daily rows per metric between `from` (inclusive) and `to` (exclusive), at most "
            "366 days apart, for the calling product."
        ),
        parameters=[
            OpenApiParameter(
                "from", str, description="Start (date or instant, inclusive); default 30 days ago."
            ),
            OpenApiParameter("to", str, description="End (date or instant, exclusive); default now."),
            OpenApiParameter("metric", str, description="Only this metric."),
        ],
        responses={200: SummarySerializer, **errors("400:invalid_request", "404:org_not_found")},
    )
    def get(self, request, org_id):
        unknown = sorted(set(request.query_params) - {"from", "to", "metric"})
        if unknown:
            raise UnknownField.naming(unknown)
        org = get_live_org(org_id)
        end = _instant(request.query_params["to"], "to") if "to" in request.query_params else timezone.now()
        start = (
            _instant(request.query_params["from"], "from")
            if "from" in request.query_params
            else _days_before(end, 30)
        )
        if start >= end or end - start > timedelta(days=366):
            raise InvalidRequest(
                details={"fields": {"from": ["`from` is before `to`, at most 366 days apart."]}}
            )
        with replica_reads():  # a report: the streaming replica's copy will do (core/replicas.py)
            summary = usage_summary(
                org=org, product=request.user, start=start, end=end, metric=request.query_params.get("metric")
            )
        return Response(
            {
                "from": start,
                "to": end,
                "totals": [_usage_row(row) for row in summary["totals"]],
                "daily": [{"date": row["date"], **_usage_row(row)} for row in summary["daily"]],
            }
        )


class HoldCommitView(APIView):
    class CommitSerializer(StrictSerializer):
        event_id = serializers.CharField(max_length=128, trim_whitespace=False)
        quantity = CreditsField(min_value=0, required=False)

    class CommitResultSerializer(serializers.Serializer):
        hold_id = serializers.CharField()
        state = serializers.CharField()
        event_id = serializers.CharField()
        cost = serializers.CharField()
        hold_expired = serializers.BooleanField()

    @extend_schema(
        operation_id="holds_commit",
        summary="Commit a hold",
        description=(
            "Records the hold's usage (its quantity unless another is given) as a usage event with "
            "`event_id`, and ends the hold. Committing again with the same `event_id` answers the same "
            "result."
        ),
        request=CommitSerializer,
        responses={
            200: CommitResultSerializer,
            **errors("400:unknown_field", "400:invalid_request", "404:hold_not_found", "409:hold_not_active"),
        },
    )
    def post(self, request, hold_id):
        data = parse_body(self.CommitSerializer, request)
        commit = commit_hold(product=request.user, hold_id=hold_id, **data)
        return Response(
            {
                "hold_id": commit.hold.public_id,
                "state": commit.hold.state,
                "event_id": commit.hold.event_id,
                "cost": credits_str(commit.cost),
                "hold_expired": commit.hold_expired,
            }
        )

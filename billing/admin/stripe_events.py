"""Stripe events as received: what is stuck or failed, with its error, and staff's Replay."""

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from billing.models import ReceivedStripeEvent, StripeEventStatus
from billing.services.stripe_events import SWEEP_AFTER, replay_stripe_event
from core.admin.actions import ObjectAction, ObjectActionsMixin, ReasonForm
from core.admin.paginators import EstimatedCountPaginator
from core.admin.readonly import ReadOnlyAdmin
from orgs.services.audit import Actor


class AttentionFilter(admin.SimpleListFilter):
    """Stuck: stored and still pending past the sweeper's two minutes. Failed: kept for staff."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("any", "Stuck or failed"), ("stuck", "Stuck (pending > 2 min)"), ("failed", "Failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        stuck = Q(status=StripeEventStatus.PENDING, received_at__lte=timezone.now() - SWEEP_AFTER)
        failed = Q(status=StripeEventStatus.FAILED)
        chosen = {"any": stuck | failed, "stuck": stuck, "failed": failed}.get(self.value() or "")
        return queryset.filter(chosen) if chosen is not None else queryset


def _replay(request, event, data):
    replay_stripe_event(event_id=event.event_id, actor=Actor.staff(request.user), reason=data["reason"])
    return f"Stripe event {event.event_id} is queued for processing again."


def _replayable(event: ReceivedStripeEvent) -> bool:
    return event.status == StripeEventStatus.FAILED or (
        event.status == StripeEventStatus.PENDING and event.received_at <= timezone.now() - SWEEP_AFTER
    )


@admin.register(ReceivedStripeEvent)
class ReceivedStripeEventAdmin(ObjectActionsMixin, ReadOnlyAdmin):
    list_display = ["received_at", "event_type", "status", "attempts", "error", "event_id"]
    list_filter = [AttentionFilter, "status", "event_type"]
    search_fields = ["=event_id"]
    date_hierarchy = "received_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    readonly_fields = (
        "event_type",
        "event_id",
        "status",
        "attempts",
        "last_error",
        "received_at",
        "next_attempt_at",
        "processed_at",
        "replayed_at",
        "livemode",
        "payload",
    )
    fields = readonly_fields

    @admin.display(description="error")
    def error(self, event: ReceivedStripeEvent) -> str:
        last_line = event.last_error.strip().splitlines()[-1:] or [""]
        return last_line[0][:90]

    def get_object_actions(self) -> list[ObjectAction]:
        return [
            ObjectAction(
                "replay",
                "Replay",
                ReasonForm,
                "billing.replay_stripe_event",
                _replay,
                applies=_replayable,
            )
        ]

"""Events to products, for staff: endpoints (disabled ones stand out), deliveries with every
attempt, and Replay (Billing admin) through the same service as the API's retry."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin.actions import ObjectAction, ObjectActionsMixin, ReasonForm
from core.admin.paginators import EstimatedCountPaginator
from core.admin.readonly import ReadOnlyAdmin, ReadOnlyInline
from orgs.models import DeliveryAttempt, EventDelivery, EventEndpoint
from orgs.services.audit import Actor
from orgs.services.event_delivery import retry_delivery


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("active", "Active"),
            ("failing", "Failing"),
            ("disabled", "Disabled"),
            ("deleted", "Deleted"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "active":
            return queryset.filter(deleted_at__isnull=True, disabled_at__isnull=True)
        if value == "failing":
            return queryset.filter(
                deleted_at__isnull=True, disabled_at__isnull=True, failing_since__isnull=False
            )
        if value == "disabled":
            return queryset.filter(deleted_at__isnull=True, disabled_at__isnull=False)
        if value == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(EventEndpoint)
class EventEndpointAdmin(ReadOnlyAdmin):
    list_display = ["url", "product", "state", "types", "public_id"]
    list_filter = [StateFilter, "product"]
    list_select_related = ["product"]
    search_fields = ["=public_id", "url"]
    exclude = ["secret", "previous_secret"]

    @admin.display(description="event types")
    def types(self, endpoint: EventEndpoint) -> str:
        return ", ".join(endpoint.event_types)

    @admin.display
    def state(self, endpoint: EventEndpoint) -> str:
        if endpoint.deleted_at is not None:
            return f"Deleted {endpoint.deleted_at:%Y-%m-%d}"
        if endpoint.disabled_at is not None:
            return f"Disabled {endpoint.disabled_at:%Y-%m-%d}"
        if endpoint.failing_since is not None:
            return f"Failing since {endpoint.failing_since:%Y-%m-%d}"
        return "Active"


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ("attempted_at", "status_code", "latency_ms", "error", "response_excerpt")
    readonly_fields = fields
    limit = 50


def _replay(request, delivery, data):
    retry_delivery(delivery=delivery, actor=Actor.staff(request.user), reason=data["reason"])
    return f"Delivery {delivery.public_id} is queued to be sent again."


@admin.register(EventDelivery)
class EventDeliveryAdmin(ObjectActionsMixin, ReadOnlyAdmin):
    list_display = [
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "org",
        "endpoint_url",
        "public_id",
    ]
    list_filter = ["status", "event__event_type", "endpoint__product"]
    list_select_related = ["event__org", "endpoint__product"]
    search_fields = ["=public_id", "=event__public_id", "=event__org__public_id"]
    raw_id_fields = ["event", "endpoint"]
    inlines = [AttemptInline]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(description="event")
    def event_type(self, delivery: EventDelivery) -> str:
        return f"{delivery.event.event_type} #{delivery.event.sequence}"

    @admin.display
    def org(self, delivery: EventDelivery) -> str:
        return delivery.event.org.public_id

    @admin.display(description="endpoint")
    def endpoint_url(self, delivery: EventDelivery) -> str:
        return f"{delivery.endpoint.product.slug}: {delivery.endpoint.url}"

    def get_object_actions(self) -> list[ObjectAction]:
        return [
            ObjectAction(
                "replay",
                "Replay",
                ReasonForm,
                "orgs.replay_event_delivery",
                _replay,
                applies=lambda delivery: delivery.endpoint.deleted_at is None,
            )
        ]

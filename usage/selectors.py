"""Reads for usage."""

from datetime import UTC

from django.db.models import Sum
from django.db.models.functions import TruncDate

from orgs.models import Organization, Product
from usage.models import UsageEvent


def usage_summary(*, org: Organization, product: Product, start, end, metric: str | None = None) -> dict:
    """Quantity and cost per metric over [start, end), in total and per UTC day: sums of stored costs."""
    events = UsageEvent.objects.filter(org=org, product=product, occurred_at__gte=start, occurred_at__lt=end)
    if metric:
        events = events.filter(metric=metric)
    totals = events.values("metric").annotate(quantity=Sum("quantity"), cost=Sum("cost")).order_by("metric")
    daily = (
        events.annotate(date=TruncDate("occurred_at", tzinfo=UTC))
        .values("date", "metric")
        .annotate(quantity=Sum("quantity"), cost=Sum("cost"))
        .order_by("date", "metric")
    )
    return {"totals": list(totals), "daily": list(daily)}

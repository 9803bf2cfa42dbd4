from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.models import Product
from usage.models import MeterParity, MeterReport, MeterReportStatus, UsageBucket

pytestmark = pytest.mark.django_db


def test_the_org_page_charts_usage_and_shows_meter_reports_and_parity(support, org, catalog):
    red = Product.objects.get(slug="red")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for days in (1, 2):
        UsageBucket.objects.create(
            org=org,
            product=red,
            metric="fix_run",
            hour=hour - timedelta(days=days),
            quantity=D(4),
            cost=D(10),
        )
    MeterReport.objects.create(
        org=org,
        identifier="ovg-x-1",
        sequence=1,
        value=7,
        carried=D("0.25"),
        billable_total=D("7.25"),
        status=MeterReportStatus.SENT,
    )
    MeterParity.objects.create(
        org=org,
        events_total=D(1),
        buckets_total=D(2),
        reported_total=D(0),
        drift=True,
        details={"problems": ["events and buckets differ"]},
    )

    html = support.get(reverse("admin:orgs_organization_change", args=[org.pk])).content.decode()

    assert "<svg" in html and html.count("<rect") == 2 and "red:fix_run: 10.000000 credits" in html
    assert "ovg-x-1" in html
    assert "drift: events and buckets differ" in html
    assert "cdn" not in html.lower()


def test_usage_events_are_found_by_event_id_or_org_id(support, org, other_org, catalog):
    from usage.services.events import record_usage_events

    red = Product.objects.get(slug="red")
    now = timezone.now()
    record_usage_events(
        product=red,
        events=[
            {
                "event_id": name,
                "org_id": owner.public_id,
                "metric": "fix_run",
                "quantity": "1",
                "occurred_at": now.isoformat(),
            }
            for name, owner in [("run-1", org), ("run-2", other_org)]
        ],
    )
    page = reverse("admin:usage_usageevent_changelist")

    by_event = support.get(page, {"q": "run-2"})
    by_org = support.get(page, {"q": org.public_id})

    assert [e.event_id for e in by_event.context["cl"].result_list] == ["run-2"]
    assert [e.event_id for e in by_org.context["cl"].result_list] == ["run-1"]

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

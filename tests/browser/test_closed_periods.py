"""A billing admin reads an org's closed periods, sees one that differs from Stripe's meter, and
corrects it with a reason, in a real Chromium."""

from datetime import timedelta
from decimal import Decimal

import pytest
from selenium.webdriver.common.by import By

from orgs.staff import BILLING_ADMIN
from tests.browser.conftest import screenshot
from tests.browser.test_support_flows import log_in, messages, open_action, wait_for
from tests.concurrency import committing
from tests.conftest import CLOCK, staff
from tests.factories import OrganizationFactory
from usage.models import ClosedPeriod, ClosedPeriodStatus, MeterReport, MeterReportKind

pytestmark = [pytest.mark.browser, committing, pytest.mark.time_machine(CLOCK, tick=True)]


def closed_period(org, *, end, status, reported, counted) -> ClosedPeriod:
    return ClosedPeriod.objects.create(
        org=org,
        invoice_id=f"in_{end:%Y%m%d}",
        customer_id="cus_initech",
        period_start=end - timedelta(days=30),
        period_end=end,
        draft_until=end + timedelta(hours=1),
        next_check_at=end + timedelta(hours=2),
        status=status,
        plan="pro",
        included_credits=Decimal(1000),
        included_used=Decimal("1000"),
        overage_reported=reported,
        stripe_counted=Decimal(counted),
        amount_invoiced_cents=4900 + 10 * counted,
        currency="eur",
    )


def test_a_billing_admin_corrects_a_period_stripe_counted_short(browser):
    org = OrganizationFactory(name="Initech", owner_user_id="u-peter")
    end = CLOCK - timedelta(days=2)
    closed_period(
        org, end=end - timedelta(days=30), status=ClosedPeriodStatus.MATCHED, reported=40, counted=40
    )
    short = closed_period(org, end=end, status=ClosedPeriodStatus.DISCREPANCY, reported=9, counted=6)
    staff("bill", BILLING_ADMIN)
    log_in(browser, "bill")

    browser.get(f"{browser.live_server_url}/admin/orgs/organization/{org.pk}/change/")
    section = wait_for(browser, "#closed_periods-group")
    browser.execute_script("arguments[0].scrollIntoView()", section)
    assert "differs from Stripe by -3" in section.text
    assert "€49.60" in section.text and "€53.00" in section.text  # the amounts invoiced, in their currency
    screenshot(browser, "closed-periods-discrepancy")

    open_action(browser, "correct-period")
    browser.find_element(By.NAME, "reason").send_keys("Stripe lost the 15:10 report")
    screenshot(browser, "closed-periods-correct-form")
    browser.find_element(By.CSS_SELECTOR, "form input[type=submit]").click()

    wait_for(browser, "ul.messagelist")
    assert any("3 overage credits Stripe lacks" in text for text in messages(browser))
    short.refresh_from_db()
    assert short.status == ClosedPeriodStatus.CORRECTED
    report = MeterReport.objects.get(org=org, kind=MeterReportKind.CORRECTION)
    assert report.value == 3
    section = browser.find_element(By.CSS_SELECTOR, "#closed_periods-group")
    browser.execute_script("arguments[0].scrollIntoView()", section)
    assert "corrected by bill: 3 credits reported" in section.text
    assert not browser.find_elements(By.CSS_SELECTOR, '#action-toolbar a[data-action="correct-period"]')
    screenshot(browser, "closed-periods-corrected")

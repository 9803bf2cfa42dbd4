"""A billing admin reads an org's closed periods, sees one that differs from Stripe's meter, and
corrects it with a reason, in a real Chromium."""

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from orgs.staff import BILLING_ADMIN, SUPPORT
from tests.browser.conftest import screenshot, viewport
from tests.browser.test_support_flows import closed_period, log_in, messages, open_action, wait_for
from tests.concurrency import committing
from tests.conftest import CLOCK, staff
from tests.factories import OrganizationFactory
from usage.models import ClosedPeriodStatus, MeterReport, MeterReportKind

pytestmark = [pytest.mark.browser, committing, pytest.mark.time_machine(CLOCK, tick=True)]


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


def test_support_reads_the_closed_periods_and_has_nothing_to_correct_them_with(browser):
    org = OrganizationFactory(name="Initech", owner_user_id="u-peter")
    closed_period(
        org, end=CLOCK - timedelta(days=2), status=ClosedPeriodStatus.DISCREPANCY, reported=9, counted=6
    )
    staff("sam", SUPPORT)
    log_in(browser, "sam")

    browser.get(f"{browser.live_server_url}/admin/orgs/organization/{org.pk}/change/")
    section = wait_for(browser, "#closed_periods-group")
    viewport(browser, 1024)
    browser.execute_script("arguments[0].scrollIntoView()", section)
    assert "differs from Stripe by -3" in section.text
    assert not browser.find_elements(By.CSS_SELECTOR, '#action-toolbar a[data-action="correct-period"]')
    page_width = browser.execute_script("return document.documentElement.clientWidth")
    assert section.rect["x"] + section.rect["width"] <= page_width  # the table fits at 1024 px
    screenshot(browser, "closed-periods-support-1024px", width=1024)

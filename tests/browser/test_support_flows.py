"""What support does all day, in a real Chromium: find an org, read why it is blocked, lift the
suspension with a reason and see it on the timeline; grant credits within and above the limit; a
grant sent twice grants once; the action toolbar never overlapping at 1024 and 1400 px."""

from datetime import timedelta
from decimal import Decimal
from itertools import combinations

import pytest
from django.contrib.auth.models import User
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from billing.models import CreditGrant
from billing.services.suspensions import suspend_organization
from orgs.models import AuditEntry, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation
from orgs.services.memberships import upsert_membership
from orgs.staff import SUPPORT
from tests.browser.conftest import screenshot, viewport
from tests.concurrency import committing
from tests.conftest import CLOCK, staff
from tests.factories import OrganizationFactory
from usage.models import ClosedPeriod, ClosedPeriodStatus

# The server's clock runs from the pinned instant, as a person's clicks follow one another.
pytestmark = [pytest.mark.browser, committing, pytest.mark.time_machine(CLOCK, tick=True)]


def log_in(browser, username: str) -> None:
    browser.get(f"{browser.live_server_url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # Logged in once the login page has gone (the login page has #site-name too: waiting for it let
    # the next page's request race the login's redirect to the index, which then won).
    WebDriverWait(browser, 10).until(lambda driver: "/admin/login/" not in driver.current_url)
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "user-tools")))


def wait_for(browser, css: str):
    return WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def messages(browser) -> list[str]:
    return [li.text for li in browser.find_elements(By.CSS_SELECTOR, "ul.messagelist li")]


def open_action(browser, name: str) -> None:
    browser.find_element(By.CSS_SELECTOR, f'#action-toolbar a[data-action="{name}"]').click()
    wait_for(browser, "input[name=submission]")


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


def blocked_org():
    org = OrganizationFactory(name="Initech", owner_user_id="u-peter")
    upsert_membership(
        org=org, user_id="u-milton", role=Role.MEMBER, email="milton@initech.example", actor=Actor.system("t")
    )
    suspend_organization(org=org, reason="chargeback on invoice 42", actor=Actor.system("risk-review"))
    return org


def test_support_finds_a_blocked_org_by_a_member_email_lifts_it_and_sees_it_on_the_timeline(browser):
    org = blocked_org()
    staff("sam", SUPPORT)
    log_in(browser, "sam")

    browser.get(f"{browser.live_server_url}/admin/orgs/organization/")
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys("milton@initech.example")
    search.submit()
    wait_for(browser, "#result_list").find_element(By.LINK_TEXT, "Initech").click()
    wait_for(browser, "#action-toolbar")
    page = browser.find_element(By.ID, "content").text
    assert "chargeback on invoice 42" in page and "Manual" in page  # why it is blocked

    open_action(browser, "lift-suspension")
    browser.find_element(By.NAME, "reason").send_keys("bank confirmed the payment")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, "ul.messagelist")
    assert any("suspension is lifted" in m for m in messages(browser))

    browser.find_element(By.CSS_SELECTOR, '#action-toolbar a[data-action="history"]').click()
    first = wait_for(browser, "#timeline tbody tr")
    assert "suspension.lifted" in first.text and "bank confirmed the payment" in first.text
    assert "staff: sam" in first.text
    screenshot(browser, "support-lifts-a-suspension-timeline")
    assert AuditEntry.objects.filter(org=org, action="suspension.lifted").count() == 1


def test_support_grants_within_and_above_the_limit(browser, settings):
    settings.SUPPORT_CREDIT_GRANT_LIMIT = Decimal(1000)
    org = OrganizationFactory(name="Globex", owner_user_id="u-hank")
    staff("sam", SUPPORT)
    log_in(browser, "sam")
    browser.get(f"{browser.live_server_url}/admin/orgs/organization/{org.pk}/change/")
    assert "Grant credits (up to 1,000)" in wait_for(browser, "#action-toolbar").text

    def grant(amount: str) -> None:
        open_action(browser, "grant-credits")
        browser.find_element(By.NAME, "amount").send_keys(amount)
        browser.find_element(By.NAME, "reason").send_keys("service outage on the 3rd")
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    grant("5000")
    refused = wait_for(browser, "p.errornote").text
    assert "grant_limit_exceeded" in refused
    screenshot(browser, "support-grant-above-the-limit")
    browser.get(f"{browser.live_server_url}/admin/orgs/organization/{org.pk}/change/")
    grant("750.5")
    wait_for(browser, "ul.messagelist")
    assert messages(browser) == ["Granted 750.5 bonus credits to Globex."]
    screenshot(browser, "support-grant-within-the-limit")
    assert [g.amount for g in CreditGrant.objects.filter(org=org, grant_type="bonus")] == [Decimal("750.5")]


def test_a_grant_submitted_twice_grants_once(browser):
    org = OrganizationFactory(name="Umbrella", owner_user_id="u-alice")
    staff("sam", SUPPORT)
    log_in(browser, "sam")
    browser.get(f"{browser.live_server_url}/admin/orgs/organization/{org.pk}/act/grant-credits/")
    browser.find_element(By.NAME, "amount").send_keys("100")
    browser.find_element(By.NAME, "reason").send_keys("goodwill")
    # Keep what the form sends, as the browser's "resubmit" would send it again.
    browser.execute_script(
        "const form = document.querySelector('#content-main form');"
        "sessionStorage.setItem('sent', new URLSearchParams(new FormData(form)).toString());"
        "sessionStorage.setItem('to', location.href);"
    )
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, "ul.messagelist")
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(sessionStorage.getItem('to'), {method: 'POST', credentials: 'same-origin',"
        " headers: {'Content-Type': 'application/x-www-form-urlencoded'},"
        " body: sessionStorage.getItem('sent'), redirect: 'manual'}).then(r => done(r.type));"
    )
    browser.refresh()
    wait_for(browser, "ul.messagelist")

    assert status == "opaqueredirect"  # the second POST was answered with the redirect back
    (again,) = messages(browser)
    assert "already submitted" in again and "Granted 100 bonus credits to Umbrella." in again
    screenshot(browser, "double-submitted-grant")
    assert CreditGrant.objects.filter(org=org, grant_type="bonus").count() == 1


def _overlaps(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


@pytest.mark.parametrize("width", [1024, 1400])
def test_the_toolbar_never_overlaps_for_a_superuser_with_every_action(browser, width):
    org = blocked_org()
    create_invitation(org=org, email="new@initech.example", role=Role.MEMBER, actor=Actor.system("t"))
    closed_period(
        org, end=CLOCK - timedelta(days=2), status=ClosedPeriodStatus.DISCREPANCY, reported=9, counted=6
    )
    User.objects.create_superuser("root", "root@staff.example", "pw")
    log_in(browser, "root")
    browser.get(f"{browser.live_server_url}/admin/orgs/organization/{org.pk}/change/")
    wait_for(browser, "#action-toolbar")
    viewport(browser, width)

    buttons = browser.find_elements(By.CSS_SELECTOR, "#action-toolbar a.button")
    title = browser.find_element(By.CSS_SELECTOR, "#content h1, #content h2")
    rects = [(b.text, b.rect) for b in buttons] + [("title", title.rect)]

    # Every action a superuser has on a suspended org with an invitation and a period to correct.
    assert len(buttons) >= 11
    assert not [(a, b) for (a, ra), (b, rb) in combinations(rects, 2) if _overlaps(ra, rb)]
    page_width = browser.execute_script("return document.documentElement.clientWidth")
    assert all(r["x"] >= 0 and r["x"] + r["width"] <= page_width for _, r in rects)
    screenshot(browser, f"toolbar-superuser-{width}px", width=width)
    if width != 1400:
        screenshot(browser, "toolbar-superuser-1400x1000")

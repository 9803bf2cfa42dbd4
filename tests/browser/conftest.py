"""The browser suite: Debian's Chromium (headless) through its chromedriver, against pytest-django's
live server. Each test saves a 1400 × 1000 screenshot in var/screenshots/ (git-ignored).

bin/test installs the `chromium` and `chromium-driver` packages when they are missing and it runs as
root; without them this suite is skipped with the reason.
"""

import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings

SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"
WIDTH, HEIGHT = 1400, 1000


def _binaries() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def _chromium():
    found = _binaries()
    if found is None:
        pytest.skip(
            "Browser tests skipped: Debian's chromium and chromium-driver are not installed "
            "(bin/test installs them when run as root: apt-get install chromium chromium-driver)."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def browser(_chromium, live_server, settings):
    """The one Chromium of the run, at 1400 × 1000, with no cookies left from the previous test."""
    # The server's clock is pinned (tests/conftest.py) but the browser's is not: a session cookie
    # dated by the pinned clock would already be expired for it, so the session ends with the browser.
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    _chromium.delete_all_cookies()
    viewport(_chromium, WIDTH)
    _chromium.live_server_url = live_server.url
    return _chromium


def viewport(driver, width: int, height: int = HEIGHT) -> None:
    """The page's viewport exactly width × height (a window's size includes the browser's frame)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def screenshot(driver, name: str, width: int = WIDTH) -> Path:
    """Saves the page as the viewer sees it (1400 × 1000 unless told) as var/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    viewport(driver, width)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path

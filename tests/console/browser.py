"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium.

Selenium is pointed at the system browser and driver, so nothing is downloaded. The
browser's console log is collected as the tests go, so one assertion can say that no
JavaScript error happened over the whole run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("MODELPORT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MODELPORT_CHROMEDRIVER", "/usr/bin/chromedriver")
#: where the tests write their screenshots; `make screenshots` points it at docs/console
SCREENSHOTS = os.environ.get("MODELPORT_SCREENSHOT_DIR", "")


def available() -> str:
    """Why the browser cannot run here ("" when it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            return f"{path} is missing: apt-get install chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing: pip install -e '.[dev]'"
    return ""


def require_browser() -> None:
    """Skip outside CI when there is no browser; in CI (CI set) a missing one fails."""
    why = available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the console tests need a browser: {why}")
        pytest.skip(why)


@dataclass
class Browser:
    driver: Any
    base: str
    shots: Path
    log: list[dict[str, Any]] = field(default_factory=list)

    # navigation and lookup -------------------------------------------------------------
    def open(self, fragment: str = "") -> None:
        self.driver.get(f"{self.base}/console{fragment}")

    def go(self, fragment: str) -> None:
        """Move inside the page (the app's router), keeping sessionStorage and state."""
        self.driver.execute_script("location.hash = arguments[0]", fragment)

    def css(self, testid: str, inside: str = "") -> str:
        return f'{inside} [data-testid="{testid}"]'.strip()

    def find(self, testid: str, timeout: float = 30, inside: str = "") -> Any:
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout).until(ec.visibility_of_element_located(
                (By.CSS_SELECTOR, self.css(testid, inside))))
        except TimeoutException:
            raise AssertionError(self.describe(f"no visible {testid!r}")) from None

    def describe(self, what: str) -> str:
        """What went wrong, with what the page shows and what its console said."""
        self.screenshot(f"failed-{what}".replace(" ", "-").replace("'", "")[:60])
        body = self.driver.find_element("tag name", "body").text
        return (f"{what} at {self.driver.current_url}; page text:\n{body}\nbrowser log:\n"
                + "\n".join(str(e) for e in self.collect_log()[-20:]))

    def all(self, testid: str, inside: str = "") -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, self.css(testid, inside))

    def click(self, testid: str, inside: str = "") -> None:
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        el = self.find(testid, inside=inside)
        WebDriverWait(self.driver, 30).until(ec.element_to_be_clickable(el))
        el.click()

    def type(self, testid: str, text: str) -> None:
        el = self.find(testid)
        el.clear()
        el.send_keys(text)

    def until(self, check: Callable[[], Any], timeout: float = 120, what: str = "") -> Any:
        """Poll ``check`` (stale elements count as not yet) until it is truthy."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def probe(_: Any) -> Any:
            try:
                return check()
            except (StaleElementReferenceException, LookupError):
                return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(probe)
        except WebDriverException:
            raise AssertionError(self.describe(f"timed out waiting for {what}")) from None

    def text(self, testid: str, inside: str = "") -> str:
        els = self.all(testid, inside)
        return els[0].text if els else ""

    def row(self, service: str) -> Any:
        rows = self.driver.find_elements(
            "css selector", f'[data-testid="service-row"][data-service="{service}"]')
        if not rows:
            raise LookupError(service)
        return rows[0]

    # evidence --------------------------------------------------------------------------
    def screenshot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def collect_log(self) -> list[dict[str, Any]]:
        self.log += self.driver.get_log("browser")
        return self.log

    def javascript_errors(self) -> list[dict[str, Any]]:
        """Errors the page's scripts raised or logged. A failed request (an expected 401,
        a 503 of a stopped service) is logged by Chromium as source "network": not a
        JavaScript error, so not counted."""
        return [e for e in self.collect_log() if e.get("level") == "SEVERE"
                and e.get("source") != "network"]

    def foreign_requests(self) -> list[str]:
        """Every URL the page loaded or called that is not on its own origin."""
        origin = urlsplit(self.base)
        urls = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".concat([location.href])")
        return [u for u in urls if urlsplit(u)[:2] != origin[:2] and not u.startswith(
            ("blob:", "data:"))]


def start_browser(base: str, shots: Path) -> Browser:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1360,1000", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-sync", "--metrics-recording-only",
                "--no-default-browser-check",
                # nothing but loopback: no update checks, no DNS for any other host
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return Browser(driver, base, Path(SCREENSHOTS) if SCREENSHOTS else shots)

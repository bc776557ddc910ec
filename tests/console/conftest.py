"""One platform and one browser for the console's tests, logged in with the admin token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningPlatform
from tests.console.browser import Browser, require_browser, start_browser


@pytest.fixture(scope="module")
def browser(platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Browser]:
    require_browser()
    b = start_browser(platform.url, tmp_path_factory.mktemp("screenshots"))
    try:
        yield b
    finally:
        b.driver.quit()


def log_in(browser: Browser, token: str) -> None:
    """The login page, as a person uses it: type the token, press Log in."""
    browser.open()
    browser.type("token-input", token)
    browser.click("login-submit")
    browser.find("service-list")


@pytest.fixture
def console(browser: Browser) -> Browser:
    """The browser on the services page, logged in (once per module)."""
    from tests.conftest import TEST_TOKEN

    on_console = browser.driver.current_url.startswith(f"{browser.base}/console")
    if not on_console or not browser.driver.execute_script(
            "return sessionStorage.getItem('modelport.token')"):
        log_in(browser, TEST_TOKEN)
    else:
        browser.go("#/services")
        browser.find("service-list")
    return browser


def zip_of(src: Path, dest: Path) -> Path:
    from tests.e2e.packages import zipped

    return zipped(src, dest)

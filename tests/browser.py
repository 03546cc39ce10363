"""Headless Chromium for tests that look at a page as a person would: Debian's chromium and
chromedriver, driven by Selenium. `make test` installs them with apt-get where it can; without
them the tests that need them skip, except on CI (``CI`` set), where they fail."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
WAIT_SECONDS = 30


def require_chromium() -> None:
    if not (CHROMIUM and CHROMEDRIVER):
        reason = "chromium and chromedriver are not installed (make test installs them)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@contextmanager
def headless_chromium(profile: Path, window: str = "1600,1000") -> Iterator[WebDriver]:
    """A fresh browser with an empty profile in ``profile``, closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--window-size={window}", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for downloads
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def show(
    driver: WebDriver, url: str, found: Callable[[], set[str]], expected: set[str], shot: Path
) -> None:
    """Open ``url`` and wait until ``found()`` holds every expected name (pages drawn by
    JavaScript fill in after loading); on a time-out, save a screenshot to ``shot`` and fail
    naming what never appeared."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    try:
        WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.25).until(
            lambda _: expected <= found()
        )
    except TimeoutException:
        driver.save_screenshot(str(shot))
        pytest.fail(
            f"{url} never showed {sorted(expected - found())}; it showed {sorted(found())[:60]} "
            f"(screenshot {shot})"
        )


def page_words(driver: WebDriver) -> Callable[[], set[str]]:
    """The words of the page as drawn (``innerText``: what a person can read)."""
    return lambda: set(driver.execute_script("return document.body.innerText").split())

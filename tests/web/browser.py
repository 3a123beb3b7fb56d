"""Headless Debian Chromium driven by Selenium through the system chromedriver, for the web channel's tests
and its screenshots (bench/web_screenshots.py). Nothing is downloaded: both executables come from apt
(`make test-servers` installs them as root)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

T = TypeVar("T")


def executables() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


MISSING = (
    "Chromium and chromedriver are not installed (as root, `make test-servers` installs Debian's chromium and "
    "chromium-driver): the browser tests are skipped"
)


def start_browser(*, language: str = "en-US", width: int = 1200, height: int = 900) -> WebDriver:
    found = executables()
    if found is None:
        raise RuntimeError(MISSING)
    browser, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in a container, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--lang={language}",
    ):
        options.add_argument(argument)
    # What navigator.languages says, which the pages follow.
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    # The driver's path given: Selenium Manager has nothing to look up, let alone download.
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def wait_for(condition: Callable[[], T | None], *, timeout_s: float = 15.0, what: str = "the page") -> T:
    """Polls condition until it returns something truthy; AssertionError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)

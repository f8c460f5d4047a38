"""A page of a site served on 127.0.0.1, opened in Debian's Chromium through Playwright:
the console errors and warnings it logged, the requests it tried to send elsewhere
(refused, so a test never reaches the internet), and a full-page screenshot."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers.data import REPO

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOST = "127.0.0.1"
# data/ is git-ignored; $CIVIC311_SCREENSHOTS puts them elsewhere.
SCREENSHOTS_ENV = "CIVIC311_SCREENSHOTS"
VIEWPORT = {"width": 1280, "height": 900}
# Playwright's own notice, logged because `visit` blocks service workers: not the site's.
BLOCKED_WORKER = "Service Worker registration blocked by Playwright"

# For each ECharts chart on the page, how many pixels of its canvas are drawn (not
# transparent): an empty chart has its canvas but draws next to nothing.
CHART_PIXELS = """() => [...document.querySelectorAll('div[_echarts_instance_] canvas')].map((canvas) => {
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let drawn = 0;
    for (let alpha = 3; alpha < pixels.length; alpha += 4) if (pixels[alpha]) drawn++;
    return drawn;
})"""


def screenshot_dir() -> Path:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or REPO / "data" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Visit:
    """One page: the Playwright page while it is open, what it logged and asked for."""

    url: str
    page: object = None
    console: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    def chart_pixels(self) -> list[int]:
        return self.page.evaluate(CHART_PIXELS)


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium under Playwright; a machine without it fails the test."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get install chromium` (as .ci/run does); the test never downloads a browser"
        )
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def visit(browser, url: str, wait_for: str, screenshot: str, timeout_s: float = 60) -> Iterator[Visit]:
    """Open `url`, wait until the network is idle and `wait_for` is visible, hand the
    visit to the caller, then save a full-page screenshot named `screenshot` in
    `screenshot_dir()`. Requests to any host but 127.0.0.1 are recorded and aborted;
    service workers are blocked so that none of their requests goes unseen."""
    opened = Visit(url)
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")

    def foreign(request_url: str) -> bool:
        host = urlsplit(request_url).hostname
        return host is not None and host != LOCAL_HOST

    def refuse(route) -> None:
        opened.foreign_requests.append(route.request.url)
        route.abort()

    context.route(foreign, refuse)
    page = context.new_page()
    page.on("console", lambda message: _log(opened, message))
    page.on("pageerror", lambda error: opened.console.append(f"pageerror: {error}"))
    try:
        page.goto(url, wait_until="networkidle", timeout=timeout_s * 1000)
        page.wait_for_selector(wait_for, state="visible", timeout=timeout_s * 1000)
        opened.page = page
        yield opened
        opened.screenshot = screenshot_dir() / screenshot
        page.screenshot(path=str(opened.screenshot), full_page=True)
    finally:
        context.close()


def _log(opened: Visit, message) -> None:
    if message.type in ("error", "warning") and message.text != BLOCKED_WORKER:
        opened.console.append(f"{message.type}: {message.text}")

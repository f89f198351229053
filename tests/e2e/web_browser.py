"""Debian's Chromium driven by Playwright, and a small driver for the page's controls."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

__all__ = ["CHROMIUM", "SHOTS", "PageDriver", "chromium"]

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageDriver:
    """One browser context (one person) with one page on the app's base URL."""

    def __init__(self, browser: Browser, base: str, **ctx: Any) -> None:
        self.base = base
        self.context: BrowserContext = browser.new_context(**ctx)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def close(self) -> None:
        self.context.close()

    def open(self, path: str = "/") -> PageDriver:
        self.page.goto(self.base + path)
        return self

    def sign_in(self, user: str) -> PageDriver:
        self.page.fill("#user", user)
        self.page.click("#signin button[type=submit]")
        self.wait_connected()
        return self

    def wait_connected(self, timeout: float = 15.0) -> None:
        self.page.wait_for_selector("#conn[data-state=connected]", timeout=timeout * 1000)

    def wait_bound(self, timeout: float = 10.0) -> None:
        self.page.wait_for_function(
            "document.getElementById('target').options[1].textContent === 'this tab only'",
            timeout=timeout * 1000,
        )

    def ask(self, prompt: str, target: str = "user") -> None:
        self.page.select_option("#target", target)
        self.page.fill("#prompt", prompt)
        self.page.click("#send")

    def ask_job(self, prompt: str, target: str = "user", timeout: float = 15.0) -> str:
        """Send, and wait until the page shows the new job; its id."""
        before = self.page.evaluate("location.hash")
        self.ask(prompt, target)
        self.page.wait_for_function(
            "h => location.hash.startsWith('#job=') && location.hash !== h",
            arg=before,
            timeout=timeout * 1000,
        )
        return self.job_id()

    def text(self) -> str:
        return self.page.text_content("#answer") or ""

    def status(self) -> str:
        return self.page.text_content("#status") or ""

    def toast(self) -> str:
        if self.page.is_hidden("#toast"):
            return ""
        return self.page.text_content("#toast-text") or ""

    def job_id(self) -> str:
        url = self.page.url
        assert "#job=" in url, url
        return url.split("#job=", 1)[1]

    def wait_text(self, expected: str, timeout: float = 30.0) -> None:
        self.page.wait_for_function(
            "t => document.getElementById('answer').textContent === t"
            " && document.getElementById('status').dataset.kind === 'completed'",
            arg=expected,
            timeout=timeout * 1000,
        )

    def wait_status(self, kind: str, timeout: float = 30.0) -> None:
        self.page.wait_for_selector(f"#status[data-kind={kind}]", timeout=timeout * 1000)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout}s")
            # Not time.sleep: the sync API runs route handlers only while it is called.
            self.page.wait_for_timeout(50)

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

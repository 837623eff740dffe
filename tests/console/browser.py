"""Headless Chromium (Debian's package) driven by Playwright, for the console's tests.

    with chromium() as browser:                       # /usr/bin/chromium, never a download
        user = Console(browser, gateway_url, shots)   # a fresh profile: its own cookies
        user.login("alice", "pw", "project-a")
        user.go("servers"); user.page.get_by_text("ACTIVE").wait_for()
        user.shot("servers")                          # <shots>/servers.png
        user.close()                                  # fails on any dialog, script error
                                                      # or Content-Security-Policy violation

Every page the console opens is watched: ``alert``/``confirm``/``prompt`` dialogs (the
console never opens one, so any is a script someone injected), uncaught errors and
CSP violations are recorded and ``close`` (or ``check``) fails on them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

CHROMIUM = Path(os.environ.get("STACKLING_CHROMIUM", "/usr/bin/chromium"))
# As the machine's notes say: no sandbox as root, and no background connections (the
# network is closed: Chromium's own lookups would be refused over and over).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# Set before the console's own scripts run: CSP violations land in a list the test reads.
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""
TIMEOUT_MS = 20_000


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (make setup installs Debian's chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (make setup installs it)")


@contextmanager
def chromium() -> Iterator[Any]:
    """One browser process; each ``Console`` opens its own context (profile) in it."""
    from playwright.sync_api import sync_playwright

    need_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """One user's browser window on the console, with everything it does watched."""

    def __init__(self, browser: Any, gateway: str, shots: Path) -> None:
        self.gateway = gateway.rstrip("/")
        self.shots = shots
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(f"CSP: {message.text}")

    def open(self, hash_: str = "") -> None:
        self.page.goto(f"{self.gateway}/console/{('#/' + hash_) if hash_ else ''}")

    def login(self, user: str, password: str, project: str = "") -> None:
        self.open()
        self.page.fill("#login-user", user)
        self.page.fill("#login-password", password)
        self.page.fill("#login-project", project)
        self.page.click("form.login button[type=submit]")
        self.page.wait_for_selector("#logout")
        self.page.wait_for_selector("#live-status[data-state=live]")

    def go(self, page_id: str) -> None:
        """Open a page by the navigation (no reload)."""
        self.page.click(f"nav a[data-page='{page_id}']")
        self.page.wait_for_selector(f".page[data-page='{page_id}']")

    def form(self, name: str) -> Any:
        """The form ``data-form=name``, its <details> opened."""
        form = self.page.locator(f"form[data-form='{name}']")
        form.wait_for(state="attached")  # some forms are built once their choices loaded
        details = self.page.locator(f"details:has(form[data-form='{name}'])")
        if details.count() and details.first.get_attribute("open") is None:
            details.first.locator("summary").first.click()
        return form

    def row(self, table: str, text: str) -> Any:
        return self.page.locator(f"table[data-table='{table}'] tbody tr", has_text=text)

    def shot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def check(self) -> None:
        """No dialog, no script error, no CSP violation so far."""
        csp = self.page.evaluate("window.__csp || []")
        problems = self.dialogs + self.errors + [f"CSP violation: {v}" for v in csp]
        assert problems == [], problems

    def close(self) -> None:
        try:
            self.check()
        finally:
            self.context.close()


def keep_screenshot(path: Path, name: str) -> None:
    """Also keep a screenshot where CI's results are (build/test-results/console)."""
    root = Path(__file__).resolve().parents[2]
    target = root / "build" / "test-results" / "console"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, target / name)


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in another thread: Playwright's sync API keeps an asyncio loop marked
    running on this one, where ``asyncio.run`` (the audit, netlink) would refuse to run."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()

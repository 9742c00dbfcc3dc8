"""A real ``xmailnb serve`` on a fresh sandbox and one headless Chromium for
the whole browser session.

Chromium comes from Debian (``/usr/bin/chromium``); Playwright never downloads
a browser here.  Without it the browser tests are skipped with a visible
reason, except in CI (``CI=true``), where a missing browser is a failure.

Fixtures for new tests:

* ``served`` (session): the dashboard on a fresh sandbox; ``served.url`` is
  its login address (opening it in any context logs in and lands on the page).
* ``page`` (function): a logged-in, loaded page on ``served`` (``en-US``).
* ``dashboard`` (function): ``dashboard(mailroot=..., lang=..., *extra_args)``
  starts another dashboard (stopped after the test); each has
  ``open_page(browser, locale=...)``, ``request(...)``, ``status()``,
  ``kernel_pids()`` (see ``tests/dashboard_server.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dashboard_server import Dashboard

CHROMIUM = Path(os.environ.get("XMAILNB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Kept for tests that name it: the running dashboard.
Served = Dashboard


def _require_chromium() -> None:
    reason = f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; it is missing in CI", pytrace=False)
        pytest.skip(reason)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the playwright package is missing in CI", pytrace=False)
        pytest.skip("browser tests need the playwright package (pip install -e '.[test]')")


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    _require_chromium()
    # Room for the pages of every test module (a page's kernel stops when
    # its tab closes; pages dropped without closing linger for a minute).
    server = Dashboard(tmp_path_factory.mktemp("served"), "--max-pages", "10")
    yield server
    server.stop()


@pytest.fixture
def dashboard(tmp_path):
    """Start more dashboards: ``dashboard(*extra_args, mailroot=None, lang=None, ...)``."""
    _require_chromium()
    started: list[Dashboard] = []

    def start(*extra: str, **kwargs) -> Dashboard:
        server = Dashboard(tmp_path / f"dashboard-{len(started)}", *extra, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served):
    """A logged-in page on the session's dashboard, loaded (English browser)."""
    p = served.open_page(browser)
    yield p
    p.close(run_before_unload=True)  # as a user closes the tab: its kernel stops
    p.context.close()


class Visit:
    """One page on the dashboard with everything it requested and logged."""

    def __init__(self, page, served: Dashboard) -> None:
        self.page = page
        self.served = served
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("websocket", lambda ws: self.requests.append(ws.url))
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def open(self) -> None:
        # the login address: cookie, then the page (first bytes only: a cold
        # start can take long on a busy machine; #loading says when it is done)
        self.page.goto(self.served.url, wait_until="commit", timeout=120_000)
        # Voila removes #loading once every cell has run and the widgets are up.
        self.page.wait_for_selector(".xm-app", timeout=120_000)
        self.page.wait_for_selector("#loading", state="detached", timeout=120_000)

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def visit(browser, served):
    context = browser.new_context(viewport={"width": 1200, "height": 1400}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    v = Visit(page, served)
    v.open()
    yield v
    page.close(run_before_unload=True)  # as a user closes the tab: its kernel stops
    context.close()


def pytest_collection_modifyitems(config, items):
    """Every test in this folder drives Chromium: marked ``browser`` here, so
    a new module cannot slip into ``make test-quick`` by forgetting it."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)

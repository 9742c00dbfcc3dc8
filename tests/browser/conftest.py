"""A real ``xmailnb serve`` on a fresh sandbox and one headless Chromium for
the whole browser session.

Chromium comes from Debian (``/usr/bin/chromium``); Playwright never downloads
a browser here.  Without it the browser tests are skipped with a visible
reason, except in CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path(os.environ.get("XMAILNB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """The running dashboard: its URL, port and the sandbox MailRoot it works on."""

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.data = tmp / "data"
        self.mailroot = self.data / "sandbox-MailRoot"
        env = {k: v for k, v in os.environ.items() if k not in ("MAIL_ROOT", "XMAILNB_LANG")}
        env.update(XMAILNB_DATA_DIR=str(self.data), LANG="C.UTF-8")
        # stderr to a file, not a pipe: a pipe nobody reads would block the
        # server once its buffer is full.
        self.log = tmp / "serve.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "xmailnb", "serve", "--port", str(self.port), "--no-browser",
                 "--lang", "en"], env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            if "Press Ctrl-C" in self.said:
                break
            time.sleep(0.2)
        match = re.search(r"(http://127\.0\.0\.1:\d+/\S*)", self.said)
        if match is None or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("xmailnb serve did not start:\n" + self.said)
        self.url = match.group(1)
        self.origin = f"127.0.0.1:{self.port}"

    @property
    def said(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def is_own(self, url: str) -> bool:
        parsed = urlparse(url)
        return parsed.scheme in ("data", "blob", "about") or parsed.netloc == self.origin

    def stop(self) -> None:
        from helpers import interrupt

        interrupt(self.proc)


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    _require_chromium()
    server = Served(tmp_path_factory.mktemp("served"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """One page on the dashboard with everything it requested and logged."""

    def __init__(self, page, served: Served) -> None:
        self.page = page
        self.served = served
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("websocket", lambda ws: self.requests.append(ws.url))
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def open(self) -> None:
        self.page.goto(self.served.url)
        # Voila removes #loading once every cell has run and the widgets are up.
        self.page.wait_for_selector("#loading", state="detached", timeout=90_000)
        self.page.wait_for_selector(".xm-app", timeout=30_000)

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
    context.close()

"""A real ``xmailnb serve`` for tests: started as a user would, ready when it
answers over HTTP, with raw HTTP helpers and logged-in browser pages.

Used by ``tests/test_serve.py`` (raw HTTP) and ``tests/browser/conftest.py``
(Playwright).  The token is given in ``XMAILNB_TOKEN`` (so it is never printed
and any appearance in the log is a leak); pages log in with the printed-style
address ``/?token=...``, which sets the HTTP-only cookie and redirects.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

from helpers import free_port

READY_TIMEOUT = 180.0  # a cold start (kernel + imports) on a loaded 2-core machine


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""


class Dashboard:
    """``xmailnb serve`` on *mailroot* (default: a fresh sandbox under *tmp*).

    Attributes:
        url: the login address (``/?token=...``): opening it in any browser
            context logs in and lands on the dashboard.
        base_url: the dashboard's address without a secret.
        token: the access token (from ``XMAILNB_TOKEN``).
        mailroot: the MailRoot it works on.
    """

    def __init__(self, tmp: Path, *extra: str, mailroot: Path | None = None, lang: str | None = None,
                 token: str | None = None, env: dict[str, str] | None = None, open_browser: bool = False,
                 wait_preheated: bool = True) -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.token = token or secrets.token_urlsafe(32)
        self.port = free_port()
        self.data = self.tmp / "data"
        self.mailroot = Path(mailroot) if mailroot else self.data / "sandbox-MailRoot"
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("MAIL_ROOT", "XMAILNB_LANG", "XMAILNB_TOKEN", "BROWSER", "LC_ALL", "LC_MESSAGES",
                                 "LANGUAGE")}
        full_env.update(XMAILNB_DATA_DIR=str(self.data), LANG="C.UTF-8", XMAILNB_TOKEN=self.token)
        full_env.update(env or {})
        argv = [sys.executable, "-m", "xmailnb", "serve", "--port", str(self.port)]
        if not open_browser:
            argv.append("--no-browser")
        if lang:
            argv += ["--lang", lang]
        if mailroot:
            argv += ["--mailroot", str(mailroot)]
        argv += list(extra)
        self.argv = argv
        self.base_url = f"http://127.0.0.1:{self.port}/"
        self.url = f"{self.base_url}?token={quote(self.token, safe='')}"
        self.origin = f"127.0.0.1:{self.port}"
        self.log = self.tmp / f"serve-{self.port}.log"
        self._contexts: list = []
        #: login cookie -> its browser key
        self.keys: dict[str, str] = {}
        # stderr to a file, not a pipe: a pipe nobody reads would block the
        # server once its buffer is full.
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(argv, env=full_env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            self.wait_ready(preheated=wait_preheated)
        except BaseException:
            self.stop()
            raise

    # -- lifecycle -----------------------------------------------------------------------
    def wait_ready(self, preheated: bool = True, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``/xmailnb/status`` until it answers (and, by default, until
        the preheated kernel is ready, so the first page is not a cold start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"xmailnb serve exited ({self.proc.returncode}):\n{self.said}")
            try:
                status = self.status()
            except (OSError, ValueError, http.client.HTTPException):
                status = None
            # ... and `serve` has said where it is and how to log in.
            if status is not None and (status.get("preheated") or not preheated) and "Ctrl-C" in self.said:
                return
            time.sleep(0.25)
        raise RuntimeError("xmailnb serve did not become ready:\n" + self.said)

    def stop(self) -> None:
        from helpers import interrupt

        self.close_pages()
        interrupt(self.proc, timeout=60)

    @property
    def said(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    # -- raw HTTP ------------------------------------------------------------------------
    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None,
                cookie: str | None = None, auth: bool = False, timeout: float = 120, key: bool = True) -> Response:
        """One HTTP request, no redirect followed, no proxy.  With a *cookie*
        from :meth:`login_cookie` it also carries that login's browser key
        (``X-Xmailnb-Key``) as the page's script does, unless ``key=False``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if cookie:
                hdrs["Cookie"] = cookie
                if key and cookie in self.keys:
                    hdrs.setdefault("X-Xmailnb-Key", self.keys[cookie])
            if auth:
                hdrs["Authorization"] = f"token {self.token}"
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def status(self) -> dict:
        resp = self.request("GET", "/xmailnb/status", auth=True, timeout=10)
        if resp.status != 200:
            raise ValueError(resp.status)
        return json.loads(resp.body)

    def login_cookie(self) -> str:
        """Log in as a browser does (``/?token=``) and return the cookie
        (``name=value``); its browser key (from the fragment of the address
        the login sends the browser to) is kept in :attr:`keys`."""
        resp = self.request("GET", "/?token=" + quote(self.token, safe=""))
        assert resp.status == 303, resp.status
        cookie = resp.header("Set-Cookie").split(";", 1)[0]
        self.keys[cookie] = resp.header("Location").split("#xmailnb-key=", 1)[1]
        return cookie

    def kernel_pids(self) -> list[int]:
        """The kernel processes of this dashboard (what a judge would count)."""
        import psutil

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            try:
                if "ipykernel" in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.Error:
                pass
        return pids

    def wait_kernels(self, predicate, timeout: float = 120.0) -> int:
        """Wait until ``predicate(number of kernel processes)``; returns the number."""
        deadline = time.monotonic() + timeout
        while True:
            count = len(self.kernel_pids())
            if predicate(count):
                return count
            assert time.monotonic() < deadline, f"kernel processes: {count}"
            time.sleep(0.5)

    # -- browser -------------------------------------------------------------------------
    def open_page(self, browser, *, locale: str = "en-US", viewport: dict | None = None, login: bool = True,
                  wait: bool = True):
        """A new browser context and page on the dashboard, logged in (through
        the login address) and loaded; closed by :meth:`close_pages`."""
        context = browser.new_context(locale=locale, viewport=viewport or {"width": 1200, "height": 1400})
        self._contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        # A cold start (kernel, imports) can take long on a busy machine: wait
        # for the first bytes, then for the page to finish loading.
        if login and wait:
            # A page takes the preheated kernel; the previous page may have
            # taken it a moment ago: wait until the pool has one again (the
            # server says so), so that no page waits on a cold kernel start.
            try:
                self.wait_ready(preheated=True)
            except RuntimeError:
                pass  # no kernel in the pool (pages capped, say): the page says why
        page.goto(self.url if login else self.base_url, wait_until="commit", timeout=READY_TIMEOUT * 1000)
        if login and wait:
            # The app appears as its cell's output; Voila removes #loading once
            # every cell has run and the widgets are up.
            page.wait_for_selector(".xm-app", timeout=READY_TIMEOUT * 1000)
            page.wait_for_selector("#loading", state="detached", timeout=READY_TIMEOUT * 1000)
        return page

    def close_pages(self) -> None:
        """Close the pages as a user closes tabs (the page tells the server,
        which stops its kernel at once), then their contexts."""
        for context in self._contexts:
            try:
                for page in context.pages:
                    page.close(run_before_unload=True)
                context.close()
            except Exception:
                pass
        self._contexts.clear()

    def is_own(self, url: str) -> bool:
        parsed = urlparse(url)
        return parsed.scheme in ("data", "blob", "about") or parsed.netloc == self.origin

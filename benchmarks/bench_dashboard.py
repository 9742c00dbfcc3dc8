"""Dashboard in Chromium: time to interactive, responsiveness during key
generation, memory of a dashboard kernel."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import Figure, full_mailroot
from helpers import free_port  # tests/ is on the path (common)

from xmailnb.checks.progress import record_step
from xmailnb.mailroot.layout import REL_PROGRESS_LOG, MailRoot
from xmailnb.steps import Step

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

BASELINE_NB = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "one", "metadata": {}, "outputs": [],
               "source": ["import ipywidgets as w\n", "b = w.Button(description='0')\n",
                          "def f(_):\n", "    b.description = '1'\n", "b.on_click(f)\n", "b"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


class Server:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.log = log
        self.port = port
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(log.read_text())
        self.url = f"http://127.0.0.1:{port}/"

    def kernel_rss(self) -> float:
        """Resident memory (MiB) of the newest kernel this server started."""
        import psutil

        kernels = [p for p in psutil.Process(self.proc.pid).children(recursive=True)
                   if "ipykernel" in " ".join(p.cmdline())]
        if not kernels:
            return float("nan")
        newest = max(kernels, key=lambda p: p.create_time())
        return newest.memory_info().rss / (1024 * 1024)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(30)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def _env(work: Path, mailroot: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAIL_ROOT", "XMAILNB_LANG")}
    env.update(LANG="C.UTF-8", XMAILNB_DATA_DIR=str(work / "data"))
    if mailroot is not None:
        env["MAIL_ROOT"] = str(mailroot)
    return env


def _open_first_visit(page, url: str) -> float:
    """A first visit (no step remembered): the page opens on step 1, its
    findings show, then step 2 answers a click."""
    start = time.perf_counter()
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".xm-finding", state="visible", timeout=120_000)
    page.click(".xm-nav-csr")
    page.wait_for_selector(".xm-step-csr", state="visible", timeout=60_000)
    return time.perf_counter() - start


def _open_remembered(page, url: str) -> float:
    """A reload on a remembered step (step 2): the page reopens on it, step
    1's findings are one click away, then step 2 answers a click."""
    start = time.perf_counter()
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".xm-nav-diagnose", state="visible", timeout=120_000)
    page.click(".xm-nav-diagnose")
    page.wait_for_selector(".xm-finding", state="visible", timeout=120_000)
    page.click(".xm-nav-csr")
    page.wait_for_selector(".xm-step-csr", state="visible", timeout=60_000)
    return time.perf_counter() - start


def _open_baseline(page, url: str) -> float:
    start = time.perf_counter()
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".widget-button", state="visible", timeout=120_000)
    page.click(".widget-button")
    page.wait_for_function("document.querySelector('.widget-button').textContent.trim() === '1'",
                           timeout=60_000)
    return time.perf_counter() - start


def run_all(work: Path, quick: bool) -> list[Figure]:
    from playwright.sync_api import sync_playwright

    runs = 3 if quick else 7
    mailroot = full_mailroot(work / "dash")
    nb = work / "baseline.ipynb"
    nb.write_text(json.dumps(BASELINE_NB))
    exe = Path(sys.executable)
    tport, bport = free_port(), free_port()
    # The dashboard wants its token (given in the environment, as a user
    # would); each visit opens the login address, which sets the cookie and
    # redirects to the page.  Pages are not closed between visits (as
    # before), so room for all of them (--max-pages).
    token = secrets.token_urlsafe(32)
    target = Server([str(exe.with_name("xmailnb")), "serve", "--port", str(tport), "--no-browser",
                     "--lang", "en", "--mailroot", str(mailroot), "--max-pages", "20"],
                    {**_env(work, None), "XMAILNB_TOKEN": token}, work / "serve.log", tport)
    target.url = f"{target.url}?token={token}"
    baseline = Server([str(exe), "-m", "voila", str(nb), f"--port={bport}", "--no-browser",
                       "--Voila.ip=127.0.0.1"], _env(work, None), work / "voila.log", bport)
    figures: list[Figure] = []
    mr = MailRoot(mailroot)

    def first_visit(page, url: str) -> float:
        # Nothing remembered: the progress log of a MailRoot never opened.
        mr.file(REL_PROGRESS_LOG).unlink(missing_ok=True)
        return _open_first_visit(page, url)

    def remembered(page, url: str) -> float:
        record_step(mr, Step.CSR)  # the last visit ended on step 2
        return _open_remembered(page, url)

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            visits = ((_open_baseline, baseline.url), (first_visit, target.url), (remembered, target.url))
            times: dict[object, list[float]] = {fn: [] for fn, _url in visits}
            for i in range(runs + 1):  # the first round warms caches (every side)
                shift = i % len(visits)  # each goes first in turn
                for fn, url in visits[shift:] + visits[:shift]:
                    ctx = browser.new_context()
                    page = ctx.new_page()
                    seconds = fn(page, url)
                    ctx.close()
                    if i:
                        times[fn].append(seconds)
                    # Visits seconds apart, as people make them: time for the
                    # pool to start and preheat the next kernel (a few seconds
                    # on a busy 2-core machine), for both servers alike.
                    time.sleep(8.0)
            b_times = times[_open_baseline]
            figures.append(Figure("1 dashboard-time-to-interactive",
                                  "first visit: findings visible + a button answers, vs bare Voilà one-button "
                                  "notebook", "s", b_times, times[first_visit], 1.0))
            figures.append(Figure("1b dashboard-reload-remembered-step",
                                  "reload on step 2: step 1 clicked, findings visible + a button answers, vs bare "
                                  "Voilà one-button notebook", "s", b_times, times[remembered], 1.0))
            figures.append(_responsiveness(browser, target.url, runs))
            browser.close()
        figures.append(Figure("memory-dashboard-kernel", "RSS of a dashboard kernel vs a bare Voilà kernel",
                              "MiB", [baseline.kernel_rss()], [target.kernel_rss()], None, kind="report"))
    finally:
        target.stop()
        baseline.stop()
    return figures


def _responsiveness(browser, url: str, runs: int) -> Figure:
    """Round trip of another widget while an RSA-4096 key is generated."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".xm-nav-diagnose", state="visible", timeout=120_000)
    page.click(".xm-nav-diagnose")  # the page reopens on the step shown last
    page.wait_for_selector(".xm-finding", state="visible", timeout=120_000)
    idle, busy = [], []

    def round_trip(step: str) -> float:
        start = time.perf_counter()
        page.click(f".xm-nav-{step}")
        page.wait_for_selector(f".xm-step-{step}", state="visible", timeout=30_000)
        return time.perf_counter() - start

    for _ in range(runs):
        idle.append(round_trip("submit"))
        idle.append(round_trip("csr"))
    page.click(".xm-nav-csr")
    # A valid pair is installed: the form offers a renewal with the installed
    # key (no key size to choose); this measures a new RSA-4096 key.
    renew = page.locator(".xm-csr-renew button")
    if renew.count() and renew.first.is_visible():
        renew.nth(1).click()
    for name, value in (("country", "JP"), ("state", "Tokyo"), ("locality", "Shibuya-ku"),
                        ("org", "Example"), ("cn", "mail.example.jp")):
        page.fill(f".xm-csr-{name} input", value)
    page.select_option(".xm-csr-keysize select", index=2)  # RSA 4096 (options: 2048, 3072, 4096)
    for _ in range(runs):
        page.click(".xm-nav-csr")
        page.wait_for_selector(".xm-step-csr", state="visible")
        before = page.input_value(".xm-csr-text textarea")
        page.click(".xm-csr-generate")
        try:  # a pending pair exists after the first round: confirm replacing it
            page.wait_for_selector(".xm-csr-confirm", state="visible", timeout=3000)
            page.click(".xm-csr-confirm")
        except Exception:
            pass
        # While the key is being generated, the kernel must still answer.
        busy.append(round_trip("submit"))
        busy.append(round_trip("csr"))
        page.wait_for_function(
            "prev => { const t = document.querySelector('.xm-csr-text textarea'); return t && t.value && t.value !== prev; }",
            arg=before, timeout=120_000)
    ctx.close()
    return Figure("5 responsiveness-during-rsa4096", "widget round trip while RSA-4096 is generated "
                  "(baseline: the same round trip when idle)", "s", idle, busy, 0.3, kind="absolute")

"""A preheated dashboard shows the MailRoot as it is when the page is opened,
not as it was when the kernel was started in advance."""

from __future__ import annotations

import time


from helpers import run

# Chromium through Playwright: outside the quick loop (make test-quick).


def _open(browser, served):
    context = browser.new_context()
    page = context.new_page()
    page.goto(served.url, wait_until="commit", timeout=120_000)  # logs in, then the page
    page.wait_for_selector(".xm-app", timeout=120_000)
    page.wait_for_selector("#loading", state="detached", timeout=120_000)
    # The page reopens on the step shown last (another test may have left
    # it elsewhere): the findings are step 1's.
    page.click(".xm-nav-diagnose")
    page.wait_for_selector(".xm-check-settings-tls", timeout=30_000)
    return context, page


def test_preheated_kernel_reads_the_mailroot_at_request_time(browser, served):
    # Let the pool start the kernel and run the dashboard up to
    # wait_for_request while TLS is still on (kernel start and imports take a
    # few seconds; with a Wizard built at preheat time this test fails).
    time.sleep(12)
    flags = ("EnableSMTP-TLS", "EnablePOP3-TLS", "EnableCTRL-TLS")
    assert run("settings", "--mailroot", str(served.mailroot), *[a for f in flags for a in ("--set", f"{f}=0")]).code == 0
    try:
        context, page = _open(browser, served)
        try:
            classes = page.get_attribute(".xm-check-settings-tls", "class") or ""
            assert "xm-error" in classes or "xm-warn" in classes, classes
        finally:
            page.close(run_before_unload=True)  # as a user closes the tab: its kernel stops
            context.close()
    finally:
        assert run("settings", "--mailroot", str(served.mailroot),
                   *[a for f in flags for a in ("--set", f"{f}=1")]).code == 0

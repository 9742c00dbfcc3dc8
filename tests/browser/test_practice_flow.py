"""The whole training flow in the browser, offline: CSR -> practice CA ->
install the practice certificate -> practice listener -> probe."""

from __future__ import annotations


from helpers import wait_file_changed

# Chromium through Playwright: outside the quick loop (make test-quick).

CSR_VALUES = {"country": "JP", "state": "Tokyo", "locality": "Minato-ku", "org": "Practice Flow",
              "cn": "mail.example.jp"}


def _go(page, step: str) -> None:
    page.click(f".xm-nav-{step}")
    page.wait_for_selector(f".xm-step-{step}", state="visible")


def test_csr_practice_sign_install_probe(browser, served):
    mr = served.mailroot
    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(served.url, wait_until="commit", timeout=120_000)  # logs in, then the page
    page.wait_for_selector(".xm-app", timeout=120_000)
    page.wait_for_selector("#loading", state="detached", timeout=120_000)

    _go(page, "csr")
    for name, value in CSR_VALUES.items():
        page.fill(f".xm-csr-{name} input", value)
    page.wait_for_selector(".xm-csr-generate:not([disabled])")
    old_csr = (mr / "sslconf" / "server.csr").read_bytes() if (mr / "sslconf" / "server.csr").is_file() else None
    page.click(".xm-csr-generate")
    if old_csr is not None:  # replacing the pending pair is confirmed first
        page.wait_for_selector(".xm-csr-confirm", state="visible")
        page.click(".xm-csr-confirm")
    wait_file_changed(mr / "sslconf" / "server.csr", old_csr)

    _go(page, "submit")
    issued = mr / "sslconf" / "practice-ca" / "issued" / "server.crt"
    old_issued = issued.read_bytes() if issued.is_file() else None
    page.click(".xm-practice-sign")
    wait_file_changed(issued, old_issued)

    _go(page, "install")
    page.click(".xm-install-use-practice")
    page.wait_for_selector(".xm-install-apply:not([disabled])")
    old_cert = (mr / "server.cert").read_bytes() if (mr / "server.cert").is_file() else None
    page.click(".xm-install-apply")
    wait_file_changed(mr / "server.cert", old_cert)
    assert (mr / "server.cert").read_bytes().startswith(issued.read_bytes())

    _go(page, "diagnose")
    page.wait_for_selector(".xm-check-cert-pair.xm-ok", state="attached")
    page.wait_for_selector(".xm-check-cert-trust.xm-warn")  # a practice certificate, never for production

    _go(page, "probe")
    page.click(".xm-practice-start")
    page.wait_for_function("() => { const i = document.querySelector('.xm-probe-ports input');"
                           " return i && /smtp=\\d+/.test(i.value); }")
    page.click(".xm-probe-run")
    page.wait_for_selector(".xm-endpoint", timeout=60_000)
    rows = page.locator(".xm-endpoint")
    assert rows.count() >= 2
    for i in range(rows.count()):
        classes = rows.nth(i).get_attribute("class") or ""
        assert "xm-error" not in classes and "xm-warn" not in classes, rows.nth(i).inner_text()
    page.screenshot(path=str(served.data.parent / "practice-probe.png"), full_page=True)
    page.click(".xm-practice-stop")
    page.close(run_before_unload=True)  # as a user closes the tab: its kernel stops
    context.close()

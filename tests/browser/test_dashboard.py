"""The dashboard in a real browser, on a real ``xmailnb serve`` over a fresh
sandbox: what a trainee does, in order (the tests share one page).

Selectors are the stable ``xm-*`` classes of DESIGN.md section 4, never
wording, so the same tests hold in both languages.
"""

from __future__ import annotations

import re
import time


import pki
from helpers import sign_csr_file, tree

# Chromium through Playwright: outside the quick loop (make test-quick).

CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
CSR_VALUES = {"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku", "org": "Example Co., Ltd.",
              "cn": "mail.example.jp"}


def go(visit, step: str) -> None:
    visit.page.click(f".xm-nav-{step}")
    visit.page.wait_for_selector(f".xm-step-{step}", state="visible")


def upload(visit, field: str, *paths) -> None:
    """Choose files for the FileUpload ``xm-install-<field>`` as a user would."""
    button = visit.page.locator(f".xm-install-{field}.widget-upload, .xm-install-{field} .widget-upload")
    with visit.page.expect_file_chooser() as chooser:
        button.first.click()
    chooser.value.set_files([str(p) for p in paths])


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_dashboard_renders_offline_without_errors(visit):
    page = visit.page
    page.wait_for_selector(".xm-step-diagnose .xm-finding")
    assert page.locator(".xm-finding").count() >= 5
    # the kernel got MAIL_ROOT from `xmailnb serve`: the page names that MailRoot
    assert str(visit.served.mailroot) in page.locator(".xm-app").inner_text()
    # a fresh sandbox has no certificate: the diagnosis says so
    assert page.locator(".xm-finding.xm-check-cert-present.xm-error").count() == 1
    for step in ("diagnose", "csr", "submit", "install", "settings", "probe", "notice"):
        assert page.locator(f".xm-nav-{step}").count() == 1
    visit.screenshot("01-diagnose")
    others = [u for u in visit.requests if not visit.served.is_own(u)]
    assert others == [], others
    assert visit.console_errors == []
    assert "Traceback" not in page.content()


def test_wrong_csr_field_is_marked_invalid(visit):
    page = visit.page
    go(visit, "csr")
    page.fill(".xm-csr-country input", "JPN")
    page.wait_for_selector(".xm-csr-country.xm-invalid")
    page.wait_for_selector(".xm-field-country.xm-error")
    page.fill(".xm-csr-email input", "not an address")
    page.wait_for_selector(".xm-csr-email.xm-invalid")
    assert page.locator(".xm-csr-generate").is_disabled()
    visit.screenshot("02-csr-invalid")
    page.fill(".xm-csr-country input", "JP")
    page.fill(".xm-csr-email input", "")
    page.wait_for_selector(".xm-csr-country:not(.xm-invalid)")
    page.wait_for_selector(".xm-csr-email:not(.xm-invalid)")


def test_csr_is_generated(visit):
    page = visit.page
    mr = visit.served.mailroot
    for name, value in CSR_VALUES.items():
        page.fill(f".xm-csr-{name} input", value)
    page.fill(".xm-csr-aliases textarea", "smtp.example.jp")
    page.wait_for_selector(".xm-csr-generate:not([disabled])")
    page.click(".xm-csr-generate")
    page.wait_for_selector(".xm-step-csr .xm-message.xm-ok")
    page.wait_for_selector(".xm-csr-result", state="visible")
    assert (mr / "sslconf" / "server.key").is_file()
    csr = (mr / "sslconf" / "server.csr").read_text()
    assert csr.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert "BEGIN CERTIFICATE REQUEST" in page.locator(".xm-csr-text textarea").input_value()
    visit.screenshot("03-csr-generated")


def test_mismatched_certificate_is_refused_and_nothing_changes(visit, tmp_path):
    page = visit.page
    go(visit, "install")
    before = tree(visit.served.mailroot)
    stranger = pki.hierarchy()  # a complete chain, but for another key than the CSR's
    (tmp_path / "other.crt").write_bytes(stranger.leaf.pem)
    (tmp_path / "other-ca.crt").write_bytes(stranger.intermediate.pem)
    upload(visit, "cert", tmp_path / "other.crt")
    upload(visit, "chain", tmp_path / "other-ca.crt")
    # refused because of the certificate (no key of this MailRoot matches it)
    page.wait_for_selector(".xm-field-cert.xm-error")
    assert page.locator(".xm-field-chain.xm-error").count() == 0
    page.wait_for_selector(".xm-step-install .xm-message.xm-error")
    assert page.locator(".xm-install-apply").is_disabled()
    visit.screenshot("04-install-refused")
    assert tree(visit.served.mailroot) == before
    assert not (visit.served.mailroot / "server.cert").exists()


def test_valid_certificate_is_installed_and_diagnosed_ok(visit, tmp_path):
    page = visit.page
    mr = visit.served.mailroot
    root = pki.root()
    inter = root.sign("xmailnb Test Intermediate CA", ca=True)
    leaf = sign_csr_file(inter, mr / "sslconf" / "server.csr")
    (tmp_path / "server.crt").write_bytes(leaf.pem)
    (tmp_path / "intermediate.crt").write_bytes(inter.pem)
    upload(visit, "cert", tmp_path / "server.crt")
    upload(visit, "chain", tmp_path / "intermediate.crt")
    page.wait_for_selector(".xm-step-install .xm-message.xm-ok")
    page.wait_for_selector(".xm-install-apply:not([disabled])")
    visit.screenshot("05-install-preview")
    page.click(".xm-install-apply")
    wait_for(lambda: (mr / "server.cert").is_file() and (mr / "server.cert").read_bytes() == leaf.pem + inter.pem)
    assert (mr / "server.key").read_bytes() == (mr / "sslconf" / "server.key").read_bytes()
    page.wait_for_selector(".xm-step-install .xm-message.xm-ok")
    visit.screenshot("06-install-done")
    go(visit, "diagnose")
    # Checks that passed are under the collapsed "all checks" while warnings are shown.
    page.wait_for_selector(".xm-finding.xm-check-cert-pair.xm-ok", state="attached")
    # The stepper says the install holds, as the core's progress does.
    page.wait_for_selector(".xm-nav-install.xm-state-done, .xm-nav-install.xm-state-attention")
    assert page.locator(".xm-finding.xm-check-cert-present.xm-ok").count() == 1
    visit.screenshot("07-diagnose-after-install")


def test_language_switch_changes_the_labels(visit):
    page = visit.page
    nav = page.locator(".xm-nav-diagnose")
    before = nav.inner_text()
    assert not CJK.search(before)
    page.locator(".xm-lang button").first.click()  # languages are listed ja, en
    page.wait_for_function("document.querySelector('.xm-nav-diagnose').innerText !== %r" % before)
    assert CJK.search(nav.inner_text())
    assert CJK.search(page.locator(".xm-step-diagnose").inner_text())
    for n, step in enumerate(("diagnose", "csr", "submit", "install", "settings", "probe", "notice"), 1):
        go(visit, step)
        visit.screenshot(f"ja-{n}-{step}")
    assert visit.console_errors == []
    assert [u for u in visit.requests if not visit.served.is_own(u)] == []

"""The workbook as a trainee sees it (issue 13), in Chromium, in both
languages: the stepper tells the truth after the page's changes, after a
rollback and after the command line changed the MailRoot under the open
page; the rollback says which files go and what that means; the practice
server's ports are shown and used by the check; no command-line talk in the
page text; the language comes from the browser.

Screenshots of every step at 1366x768 and 1024x768 in both languages are
written under the test run's temporary folder (``.../workbook-screens``;
the path is printed), not into the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import CLI_TALK, wait_file_changed
from xmailnb.i18n import Msg, page_text

CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
STEPS = ("diagnose", "csr", "submit", "install", "settings", "probe", "notice")
CSR_VALUES = {"country": "JP", "state": "Tokyo", "locality": "Minato-ku", "org": "Workbook Class",
              "cn": "mail.example.jp"}
SIZES = {"1366": {"width": 1366, "height": 768}, "1024": {"width": 1024, "height": 768}}
_MARKS = {"todo": "○", "done": "✔", "attention": "⚠", "broken": "✖"}


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "workbook-screens"
    folder.mkdir(exist_ok=True)
    print(f"\nworkbook screenshots: {folder}")
    return folder


def go(page, step: str) -> None:
    page.click(f".xm-nav-{step}")
    page.wait_for_selector(f".xm-step-{step}", state="visible")


def state(page, step: str) -> str:
    classes = page.locator(f".xm-nav-{step}").get_attribute("class") or ""
    found = [c.removeprefix("xm-state-") for c in classes.split() if c.startswith("xm-state-")]
    assert len(found) == 1, classes
    return found[0]


def marks(page) -> str:
    """The stepper's marks (DESIGN.md section 6), e.g. ``1✔ 2○ 3○ 4○ 5✔ 6○ 7○``."""
    return " ".join(f"{n}{_MARKS[state(page, step)]}" for n, step in enumerate(STEPS, 1))


def wait_marks(page, wanted: str, timeout: float = 30_000) -> None:
    """Wait until the stepper shows *wanted* (the page refreshes after each change)."""
    by_mark = {mark: name for name, mark in _MARKS.items()}
    selectors = [f".xm-nav-{step}.xm-state-{by_mark[m[-1]]}" for step, m in zip(STEPS, wanted.split(), strict=True)]
    page.wait_for_function("(sels) => sels.every(s => document.querySelector(s))", arg=selectors,
                           timeout=timeout)
    assert marks(page) == wanted


def tab_lines(page) -> list[int]:
    """How many lines each step's tab takes (two: the mark and number, then the name)."""
    return page.eval_on_selector_all(".xm-nav", """buttons => buttons.map(b => {
        const s = getComputedStyle(b);
        const inner = b.scrollHeight - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom);
        return Math.round(inner / parseFloat(s.lineHeight)); })""")


def headline(page) -> str:
    return " ".join(page.locator(".xm-headline").inner_text().split())


def wait_state(page, step: str, *wanted: str, timeout: float = 30_000) -> None:
    selector = ", ".join(f".xm-nav-{step}.xm-state-{w}" for w in wanted)
    page.wait_for_selector(selector, timeout=timeout)


def upload(page, field: str, path) -> None:
    button = page.locator(f".xm-install-{field}.widget-upload, .xm-install-{field} .widget-upload")
    with page.expect_file_chooser() as chooser:
        button.first.click()
    chooser.value.set_files([str(path)])


class Walk:
    """One trainee's page: screenshots and the page text seen at each step."""

    def __init__(self, page, lang: str, screens) -> None:
        self.page, self.lang, self.screens = page, lang, screens
        self.talk: list[tuple[str, str]] = []

    def look(self, name: str, *, shots: bool = False) -> None:
        text = self.page.locator(".xm-app").inner_text()
        self.talk += [(name, line) for line in text.splitlines() if CLI_TALK.search(line)]
        if shots:
            for size, viewport in SIZES.items():
                self.page.set_viewport_size(viewport)
                self.page.wait_for_timeout(150)
                # No tab wraps its name (so none leaves a character alone).
                assert tab_lines(self.page) == [2] * len(STEPS), (name, size, tab_lines(self.page))
                self.page.screenshot(path=str(self.screens / f"{self.lang}-{size}-{name}.png"))
                self.page.screenshot(path=str(self.screens / f"{self.lang}-{size}-{name}-full.png"), full_page=True)
            self.page.set_viewport_size(SIZES["1366"])


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_full_flow_tells_the_truth_in_the_page(browser, dashboard, screens, tmp_path, lang):
    served = dashboard()
    mr = served.mailroot
    locale = "ja-JP" if lang == "ja" else "en-US"
    page = served.open_page(browser, locale=locale, viewport=SIZES["1366"])
    walk = Walk(page, lang, screens)
    # The language is the browser's (the server runs in the C locale).
    assert bool(CJK.search(page.locator(".xm-nav-diagnose").inner_text())) == (lang == "ja")
    # A fresh sandbox, opened on step 1: its diagnosis ran; XMail's default
    # settings serve TLS; nothing else is done.  The page says what the marks mean.
    wait_marks(page, "1✔ 2○ 3○ 4○ 5✔ 6○ 7○")
    page.wait_for_selector(".xm-legend")
    # The headline names its source: the files, before any live check.
    assert headline(page) == "✖ " + page_text("progress.headline.files_not_ready", lang, count=2)
    walk.look("1-diagnose", shots=True)

    # 2. CSR: a wrong value first, then a good one.
    go(page, "csr")
    page.fill(".xm-csr-country input", "Japan")
    page.wait_for_selector(".xm-csr-country.xm-invalid")
    walk.look("2-csr-invalid", shots=True)
    for name, value in CSR_VALUES.items():
        page.fill(f".xm-csr-{name} input", value)
    page.wait_for_selector(".xm-csr-generate:not([disabled])")
    page.click(".xm-csr-generate")
    page.wait_for_selector(".xm-step-csr .xm-message.xm-ok", timeout=60_000)
    wait_marks(page, "1✔ 2✔ 3○ 4○ 5✔ 6○ 7○")
    walk.look("2-csr", shots=True)

    # "Next" from the bottom of a long step shows the next step from its title.
    page.mouse.move(600, 400)
    page.mouse.wheel(0, 5000)
    page.wait_for_timeout(300)
    assert page.locator(".xm-step-csr .xm-step-head").evaluate("e => e.getBoundingClientRect().top < 0")
    page.click(".xm-next")
    page.wait_for_selector(".xm-step-submit", state="visible")
    page.wait_for_timeout(500)
    top = page.locator(".xm-step-submit .xm-step-head").evaluate("e => e.getBoundingClientRect().top")
    assert 0 <= top < SIZES["1366"]["height"] / 2, top

    # 3. Five ticks are notes, not a certificate: step 3 stays not started.
    issued = mr / "sslconf" / "practice-ca" / "issued" / "server.crt"
    for box in page.locator(".xm-checklist input[type=checkbox]").all():
        box.check()
    wait_file_changed(mr / "sslconf" / "checklist.json", None)
    page.wait_for_timeout(500)
    assert marks(page) == "1✔ 2✔ 3○ 4○ 5✔ 6○ 7○"
    # Signed by the practice CA.
    page.click(".xm-practice-sign")
    wait_file_changed(issued, None)
    wait_marks(page, "1✔ 2✔ 3✔ 4○ 5✔ 6○ 7○")
    walk.look("3-submit", shots=True)
    # The ACME panel says what it needs, with its labels in full; in the
    # sandbox Let's Encrypt is off, and the reason is beside the button.
    page.locator(".xm-submit-mode button").nth(1).click()
    page.wait_for_selector(".xm-acme-needs", state="visible")
    for label in page.locator(".xm-acme .widget-label, .xm-acme .widget-toggle-button").all():
        if label.is_visible():
            assert label.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), label.inner_text()
    assert page.locator(".xm-acme-run").is_disabled()
    assert page.locator(".xm-acme-blocked").inner_text().strip() == page_text(
        "acme.ui.sandbox_blocked", lang, sign=Msg.of("ui.submit.practice.sign"))
    walk.look("3-submit-acme", shots=True)
    page.locator(".xm-submit-mode button").nth(0).click()

    # 4. Install: a file that is not a certificate first, then the practice one.
    go(page, "install")
    junk = tmp_path / "notes.txt"
    junk.write_text("not a certificate")
    upload(page, "cert", junk)
    page.wait_for_selector(".xm-field-cert.xm-error")
    walk.look("4-install-refused", shots=True)
    page.click(".xm-install-use-practice")
    page.wait_for_selector(".xm-install-apply:not([disabled])")
    walk.look("4-install-preview", shots=True)
    page.click(".xm-install-apply")
    wait_file_changed(mr / "server.cert", None)
    # The practice CA's "training only" note is expected in the sandbox: no warning.
    # Not shown yet: the notice is not done because a certificate was installed.
    wait_marks(page, "1✔ 2✔ 3✔ 4✔ 5✔ 6○ 7○")
    assert headline(page) == "✔ " + page_text("progress.headline.files_ready", lang)
    # The preview's "nothing written yet" heading is gone once installed.
    assert page.locator(".xm-install-preview-box").is_hidden()
    walk.look("4-install-done", shots=True)

    # 5. Settings: an invalid value is refused beside its field.
    go(page, "settings")
    page.select_option(".xm-setting-mode-SmtpConfig select", index=2)  # set to a list
    page.fill(".xm-setting-SmtpConfig input", "wanttls")
    page.click(".xm-settings-save")
    page.wait_for_selector(".xm-field-setting-SmtpConfig.xm-error")
    walk.look("5-settings-refused", shots=True)
    page.select_option(".xm-setting-mode-SmtpConfig select", index=0)  # not set

    # 6. The live check: a bad ports field, then the practice server on the ports shown.
    go(page, "probe")
    page.fill(".xm-probe-ports input", "smtp=abc")
    page.click(".xm-probe-run")
    page.wait_for_selector(".xm-field-ports.xm-error")
    walk.look("6-probe-refused", shots=True)
    shown = {name: int(page.locator(f".xm-practice-port-{name} input").input_value()) for name in ("smtp", "pop3s")}
    assert all(p > 0 for p in shown.values()), shown
    page.click(".xm-practice-start")
    expected = f"smtp={shown['smtp']},pop3s={shown['pop3s']}"
    page.wait_for_function("(v) => document.querySelector('.xm-probe-ports input').value === v", arg=expected)
    assert page.locator(".xm-probe-host input").input_value() == "127.0.0.1"
    page.wait_for_selector(".xm-practice-running")
    page.click(".xm-probe-run")
    page.wait_for_selector(".xm-endpoint", timeout=60_000)
    assert page.locator(".xm-endpoint-smtp").count() == 1 and page.locator(".xm-endpoint-pop3s").count() == 1
    assert page.locator(".xm-endpoint.xm-error").count() == 0
    wait_marks(page, "1✔ 2✔ 3✔ 4✔ 5✔ 6✔ 7○")
    assert headline(page).startswith("✔ ")
    assert re.search(r"\d\d:\d\d", headline(page)), headline(page)
    walk.look("6-probe", shots=True)
    page.click(".xm-practice-stop")

    # 7. The notice: a wrong host name first.
    go(page, "notice")
    wait_state(page, "notice", "done")
    page.fill(".xm-notice-hostname input", "bad host!")
    page.wait_for_selector(".xm-field-hostname.xm-error")
    # Said once: beside the field; the step's outcome line only points there.
    note = page.locator(".xm-field-hostname").inner_text().strip()
    outcome = page.locator(".xm-step-notice .xm-message.xm-error").inner_text()
    assert note and note.splitlines()[0] not in outcome
    walk.look("7-notice-refused", shots=True)
    page.fill(".xm-notice-hostname input", "")
    page.wait_for_selector(".xm-field-hostname:not(.xm-error)", state="attached")
    walk.look("7-notice", shots=True)

    # Roll back the install: the page says what goes and what that means.
    go(page, "install")
    page.click(".xm-rollback")
    box = page.locator(".xm-rollback-confirm")
    box.wait_for(state="visible")
    question = box.inner_text()
    assert "server.cert" in question and "server.key" in question and "TLS" in question
    walk.look("4-rollback-confirm", shots=True)
    page.click(".xm-rollback-yes")
    page.wait_for_selector(".xm-rollback-result.xm-ok")
    assert "server.cert" in page.locator(".xm-rollback-result").inner_text()
    assert not (mr / "server.cert").exists()
    # The key, CSR and signed certificate still wait; server.tab was not touched.
    wait_marks(page, "1✔ 2✔ 3✔ 4✖ 5✔ 6✖ 7✖")
    assert headline(page) == "✖ " + page_text("progress.headline.files_broken", lang, count=2)
    # The diagnosis leads to installing their certificate, not to a new key.
    go(page, "diagnose")
    assert page.locator(".xm-goto-csr").count() == 0
    assert page.locator(".xm-goto-install").count() == 1
    walk.look("4-rollback-done", shots=True)

    # The command line installs again while the page is open: the page follows.
    env = {**os.environ, "MAIL_ROOT": str(mr), "XMAILNB_DATA_DIR": str(served.data)}
    inter = mr / "sslconf" / "practice-ca" / "issued" / "intermediate.crt"
    done = subprocess.run([sys.executable, "-m", "xmailnb", "install", "--cert", str(issued), "--chain", str(inter),
                           "--mailroot", str(mr)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    wait_state(page, "install", "done", "attention", timeout=30_000)
    walk.look("1-diagnose-after-cli")
    assert walk.talk == []


def test_language_follows_each_browser(browser, dashboard):
    served = dashboard()
    ja = served.open_page(browser, locale="ja-JP")
    en = served.open_page(browser, locale="en-US")
    assert CJK.search(ja.locator(".xm-nav-diagnose").inner_text())
    assert not CJK.search(en.locator(".xm-nav-diagnose").inner_text())
    assert CJK.search(ja.locator(".xm-headline").inner_text())

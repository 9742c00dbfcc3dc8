"""The workbook page tells the truth (issue 13): the stepper follows the
core's step progress after every change (the page's own, a rollback, the
command line's), the rollback says what it removes and what that means,
and the page never talks command line."""

from __future__ import annotations

import html
import re
import shutil
import time
from pathlib import Path

import pytest

from helpers import CLI_TALK, CSR_ARGS, run
from xmailnb.flows import actions
from xmailnb.pki import csr as csrmod
from xmailnb.mailroot import resolve
from xmailnb.checks.progress import step_progress
from xmailnb.ui import Wizard
from xmailnb.ui.install import upload_value
from xmailnb.ui.watch import MailRootWatch

FORM = {"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku", "org": "Example Co., Ltd.",
        "cn": "mail.example.jp"}
STEPS = ("diagnose", "csr", "submit", "install", "settings", "probe", "notice")


@pytest.fixture
def mailroot(tmp_path) -> Path:
    target = tmp_path / "MailRoot"
    shutil.copytree(resolve(None).path, target)
    return target


def states(wizard: Wizard) -> dict[str, str]:
    """The state class each navigation button carries (exactly one)."""
    out = {}
    for name, button in wizard.nav.items():
        found = [c for c in button._dom_classes if c.startswith("xm-state-")]
        assert len(found) == 1, (name, found)
        out[name] = found[0].removeprefix("xm-state-")
    return out


def core_states(mailroot: Path) -> dict[str, str]:
    return {str(k): str(v) for k, v in step_progress(resolve(mailroot)).states.items()}


def page_text(widget) -> str:
    """What the page shows as text: values, labels, options, tooltips (markup removed)."""
    out, stack = [], [widget]
    while stack:
        w = stack.pop()
        for attr in ("value", "description", "placeholder", "tooltip"):
            v = getattr(w, attr, None)
            if isinstance(v, str):
                out.append(v)
        out.extend(str(o) for o in (getattr(w, "_options_labels", ()) or ()))
        stack.extend(getattr(w, "children", ()) or ())
    raw = re.sub(r"<style>.*?</style>", "", "\n".join(out), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", raw))


def install_practice(wizard: Wizard) -> None:
    wizard.steps["submit"].sign_practice()
    install = wizard.steps["install"]
    install.load_practice()
    assert install.apply() is not None


_MARKS = {"todo": "○", "done": "✔", "attention": "⚠", "broken": "✖"}


def marks(wizard: Wizard) -> str:
    """The stepper as the page shows it, e.g. ``1✔ 2○ 3○ 4○ 5✔ 6○ 7○``; the
    class each button carries and the mark in its label must agree."""
    out = []
    for n, (name, state) in enumerate(states(wizard).items(), 1):
        assert _MARKS[state] in wizard.nav[name].description, (name, wizard.nav[name].description)
        out.append(f"{n}{_MARKS[state]}")
    return " ".join(out)


def headline(wizard: Wizard) -> str:
    found = re.search(r'<div class="xm-headline[^"]*"[^>]*>(.*?)</div>', wizard.header.value, re.DOTALL)
    assert found is not None
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_sandbox_flow_with_the_page_open(mailroot):
    wizard = Wizard(mailroot, lang="en", watch_interval=None)
    # The page opens on step 1 and shows the diagnosis: it has been run.
    # XMail's default settings serve TLS; nothing else is done.
    assert marks(wizard) == "1✔ 2○ 3○ 4○ 5✔ 6○ 7○"
    assert states(wizard) == core_states(mailroot)
    assert headline(wizard) == "✖ Files not ready yet: 2 problems to fix"

    wizard.show("csr")
    actions.create_csr(resolve(mailroot), csrmod.request_from_values(FORM))
    wizard.refresh_all()
    assert marks(wizard) == "1✔ 2✔ 3○ 4○ 5✔ 6○ 7○"

    submit = wizard.steps["submit"]
    wizard.show("submit")
    for box in submit.checks.values():
        box.value = True
    assert marks(wizard) == "1✔ 2✔ 3○ 4○ 5✔ 6○ 7○", "five ticks, nothing signed"

    submit.sign_practice()
    assert marks(wizard) == "1✔ 2✔ 3✔ 4○ 5✔ 6○ 7○"
    install = wizard.steps["install"]
    wizard.show("install")
    assert install.use_practice.layout.display != "none", "step 4 offers the practice certificate"
    install.load_practice()
    assert install.apply() is not None
    # The practice CA's "training only" note is expected in the sandbox.
    assert marks(wizard) == "1✔ 2✔ 3✔ 4✔ 5✔ 6○ 7○"
    assert headline(wizard) == "✔ Files ready; the server has not been checked with them yet (step 6)"

    wizard.show("notice")
    assert marks(wizard) == "1✔ 2✔ 3✔ 4✔ 5✔ 6○ 7✔"

    wizard.show("install")
    install.ask_rollback()
    install.rollback()
    assert marks(wizard) == "1✔ 2✔ 3✔ 4✖ 5✔ 6○ 7✖"
    assert states(wizard) == core_states(mailroot)
    assert headline(wizard) == "✖ Files no longer ready: 2 problems to fix"
    # The signed key and CSR still wait: the diagnosis leads to installing
    # their certificate, never to a new key.
    diagnosis = wizard.steps["diagnose"]
    assert [b.description for b in diagnosis.goto.children] == ["Go to 4. Install"]
    fix = diagnosis.report.by_check("key.present").fix
    assert fix is not None and fix.page("en") == (
        "No new key is needed: a key and CSR already wait in sslconf. Get the certificate for them "
        "(step 3: Get it signed), then install it (step 4: Install).")


def test_a_reload_opens_the_step_the_trainee_was_on(mailroot):
    wizard = Wizard(mailroot, lang="en", watch_interval=None)
    wizard.show("install")
    wizard.watch.stop()
    again = Wizard(mailroot, lang="en", watch_interval=None)
    assert again.current == "install"
    assert again.body.children[0] is again.steps["install"]
    assert "xm-nav-current" in again.nav["install"]._dom_classes


def test_a_change_from_the_command_line_reaches_the_open_page(mailroot, monkeypatch):
    wizard = Wizard(mailroot, lang="en", watch_interval=None)
    assert states(wizard)["csr"] == "todo"
    monkeypatch.setenv("MAIL_ROOT", str(mailroot))
    result = run("csr", *CSR_ARGS)
    assert result.code == 0, result.err
    assert wizard.watch.check()
    assert states(wizard)["csr"] == "done"
    assert not wizard.watch.check()  # seen: no second refresh


def test_the_watch_thread_polls_with_sleep_and_calls_back(mailroot):
    seen = []
    watch = MailRootWatch(resolve(mailroot), lambda: seen.append(1), interval=0.05)
    try:
        actions.create_csr(resolve(mailroot), csrmod.request_from_values(FORM))
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen
    finally:
        watch.stop()


@pytest.fixture
def tokyo(monkeypatch):
    """The machine's time zone is Japan's (times are shown in local time)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_rollback_confirmation_names_the_files_and_what_it_means(mailroot, tokyo):
    actions.create_csr(resolve(mailroot), csrmod.request_from_values(FORM))
    wizard = Wizard(mailroot, lang="en", watch_interval=None)
    install_practice(wizard)
    settings = wizard.steps["settings"]
    settings.inputs["SSLUseCertsFile"].value = not settings.inputs["SSLUseCertsFile"].value
    settings.save()
    install = wizard.steps["install"]
    # The newest change is the settings; the default is still "undo the last install".
    assert install.history[0].action != "install"
    chosen = next(e for e in install.history if e.id == install.rollback_select.value)
    assert chosen.action == "install"
    labels = [label for label, _id in install.rollback_select.options]
    assert len(labels) == len(set(labels))  # no two alike
    assert not any(re.search(r"\d{8}T\d{6}", label) for label in labels)  # no archive ids
    assert all("JST" in label and "UTC" not in label for label in labels)  # local time
    install.ask_rollback()
    assert install.rollback_box.layout.display is None
    question = html.unescape(install.rollback_warning.value)
    assert "server.cert" in question and "server.key" in question
    assert "removed" in question.lower() and "TLS" in question
    install.rollback_yes.click()
    result = html.unescape(install.rollback_result.value)
    assert "server.cert" in result and "TLS" in result
    assert not (mailroot / "server.cert").exists()
    # Now the first choice is undoing that rollback, not the install it undid.
    chosen = next(e for e in install.history if e.id == install.rollback_select.value)
    assert chosen.action == "rollback"
    assert install._labels[chosen.id].key == "rollback.label.undo_rollback"


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_no_command_line_talk_in_the_page_even_with_errors(mailroot, lang):
    wizard = Wizard(mailroot, lang=lang, watch_interval=None)
    for name in STEPS:
        wizard.show(name)
    # Provoke a refusal at every step.
    csr = wizard.steps["csr"]
    csr.inputs["country"].value = "Japan"
    csr.generate()
    submit = wizard.steps["submit"]
    submit.sign_practice()  # no CSR yet
    submit.mode.value = "acme"
    install = wizard.steps["install"]
    install.uploads["cert"].value = upload_value(b"not a certificate", "notes.txt")
    install.uploads["chain"].value = upload_value(b"junk", "chain.pem")
    settings = wizard.steps["settings"]
    settings.inputs["SmtpConfig"].value = "wanttls"
    settings.save()
    probe = wizard.steps["probe"]
    probe.ports.value = "smtp=abc"
    probe.run()
    probe.host.value = ""
    probe.run()
    notice = wizard.steps["notice"]
    notice.hostname.value = "bad host!"
    text = page_text(wizard) + "\n".join(page_text(s) for s in wizard.steps.built().values())
    talk = [line for line in text.splitlines() if CLI_TALK.search(line)]
    assert talk == []
    leftovers = [k for k in re.findall(r"\b(?:ui|cli|csr|acme|servertab)\.[a-z_]+\.[a-z_.]+\b", text)]
    assert leftovers == []  # no key shown instead of its text


def test_practice_ports_are_shown_before_the_start(mailroot):
    wizard = Wizard(mailroot, lang="en", watch_interval=None)
    probe = wizard.steps["probe"]
    ports = {n: f.value for n, f in probe.practice_port.items()}
    assert all(0 < p < 65536 for p in ports.values()) and len(set(ports.values())) == 2

"""The workbook's widgets, driven headless: set values, click buttons, read classes."""

from __future__ import annotations

import difflib
import json
import stat
from pathlib import Path

import pytest

import pki
from helpers import sign_csr_file, tree
from xmailnb.flows import actions
from xmailnb.pki import csr as csrmod
from xmailnb.i18n import text
from xmailnb.mailroot import resolve
from xmailnb.status import Status
from xmailnb.checks.progress import StepState
from xmailnb.ui import CsrStep, DiagnoseStep, InstallStep, NoticeStep, ProbeStep, SettingsStep, SubmitStep, Wizard
from xmailnb.ui._base import Activity
from xmailnb.ui.install import upload_value

FORM = {"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku", "org": "Example Co., Ltd.",
        "cn": "mail.example.jp", "aliases": "smtp.example.jp"}


@pytest.fixture(scope="module")
def ca():
    r = pki.root()
    return r, r.sign("xmailnb Test Intermediate CA", ca=True)


def make_csr(mailroot: Path) -> None:
    request = csrmod.request_from_values(FORM)
    actions.create_csr(resolve(mailroot), request)


def classes(widget) -> tuple[str, ...]:
    return tuple(widget._dom_classes)


def all_text(widget) -> str:
    """Every string a widget tree shows (values, descriptions, options)."""
    out = []
    stack = [widget]
    while stack:
        w = stack.pop()
        for attr in ("value", "description", "placeholder"):
            v = getattr(w, attr, None)
            if isinstance(v, str):
                out.append(v)
        for opt in getattr(w, "_options_labels", ()) or ():
            out.append(str(opt))
        stack.extend(getattr(w, "children", ()) or ())
    return "\n".join(out)


# -- CSR -------------------------------------------------------------------------

def test_csr_form_validates_as_you_type_and_generates_in_a_thread(mailroot):
    step = CsrStep(mailroot, lang="en")
    assert "xm-step-csr" in classes(step)
    for name in ("country", "state", "locality", "org", "unit", "cn", "aliases", "email", "keytype",
                 "keysize", "memo"):
        assert f"xm-csr-{name}" in classes(step.inputs[name])
    for name, value in FORM.items():
        step.inputs[name].value = value
    step.inputs["country"].value = "Japan!"
    assert "xm-invalid" in classes(step.inputs["country"])
    assert "xm-error" in classes(step.notes["country"]) and step.notes["country"].value
    assert step.generate_button.disabled
    step.inputs["country"].value = "jp"
    assert "xm-invalid" not in classes(step.inputs["country"])
    assert not step.notes["country"].value
    assert not step.generate_button.disabled
    assert step.state is StepState.TODO  # nothing written yet

    step.inputs["keytype"].value = "ec"
    assert step.rows["keysize"].layout.display == "none"
    assert "P-256" in step.keyinfo.value
    step.inputs["keytype"].value = "rsa"

    step.generate_button.click()
    assert step.wait(60)
    sslconf = mailroot / "sslconf"
    assert stat.S_IMODE((sslconf / "server.key").stat().st_mode) == 0o600
    assert (sslconf / "server.csr").read_text() == step.csr_text.value
    assert step.csr_text.value.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert "xm-ok" in classes(step.message) and step.state is StepState.DONE
    assert "data:application/pkcs10;base64," in step.download.value
    assert "smtp.example.jp" in step.info.value
    assert "PRIVATE KEY" not in all_text(step)
    # Read-only: an edit is undone.
    step.csr_text.value = "tampered"
    assert step.csr_text.value.startswith("-----BEGIN CERTIFICATE REQUEST-----")


def test_csr_replacing_a_pending_pair_asks_first(mailroot):
    make_csr(mailroot)
    before = tree(mailroot)
    step = CsrStep(mailroot, lang="en")
    assert step.state is StepState.DONE and step.result.layout.display is None  # shows the pending CSR
    assert step.inputs["cn"].value == "mail.example.jp"  # pre-filled from the pending CSR
    assert step.inputs["aliases"].value == "smtp.example.jp"
    step.generate_button.click()
    assert step.future is None and step.confirm_box.layout.display is None
    assert "xm-warn" in classes(step.replace_warning)
    assert tree(mailroot) == before
    step.cancel_button.click()
    assert step.confirm_box.layout.display == "none"
    step.generate_button.click()
    step.confirm_button.click()
    assert step.wait(60)
    assert tree(mailroot) != before
    assert "xm-ok" in classes(step.message)
    assert any("archived" in text(m.key, "en") for m in step.message.msgs)
    assert "PRIVATE KEY" not in all_text(step)


# -- install and rollback -------------------------------------------------------------

def test_install_preview_apply_refreshes_diagnosis_and_rolls_back(mailroot, ca):
    make_csr(mailroot)
    root, inter = ca
    leaf = sign_csr_file(inter, mailroot / "sslconf" / "server.csr")
    wizard = Wizard(mailroot, lang="en")
    diag = wizard.steps["diagnose"]
    assert "xm-error" in diag.row_classes("cert.present")
    install = wizard.steps["install"]
    wizard.nav["install"].click()
    assert wizard.body.children == (install,)
    before = tree(mailroot)

    install.uploads["cert"].value = upload_value(leaf.pem, "server.crt")
    install.uploads["chain"].value = upload_value(inter.pem + root.pem, "../../etc/chain.pem")
    assert install.plan is not None
    assert "mail.example.jp" in install.preview_html.value
    assert "xmailnb Test Intermediate CA" in install.preview_html.value
    assert not install.apply_button.disabled
    assert tree(mailroot) == before  # the preview writes nothing
    assert not (mailroot / "etc").exists()

    install.apply_button.click()
    assert (mailroot / "server.cert").read_bytes() == leaf.pem + inter.pem
    assert "xm-ok" in classes(install.message)
    # Installed, with one warning: the test root is no publicly trusted CA.
    assert install.state is StepState.ATTENTION
    assert [(f.check, f.status) for f in wizard.progress.problems] == [("cert.trust", Status.WARN)]
    assert "xm-state-todo" not in classes(wizard.nav["install"])
    # The diagnosis ran again by itself.
    assert "xm-ok" in diag.row_classes("cert.present")
    assert "xm-ok" in diag.row_classes("cert.pair")
    assert wizard.next_button.layout.display is None

    # Rollback asks first, then restores the state before the install.
    assert install.rollback_select.value == install.history[0].id
    assert install.history[0].action == "install"
    installed = tree(mailroot)
    install.rollback_button.click()
    assert install.rollback_box.layout.display is None
    assert tree(mailroot) == installed
    install.rollback_yes.click()
    assert not (mailroot / "server.cert").exists()
    assert "xm-ok" in classes(install.rollback_result) and not install.message.msgs  # said once
    assert "server.cert" in install.rollback_result.value
    assert "xm-error" in diag.row_classes("cert.present")
    # The stepper tells the truth at once: the install no longer holds.
    assert "xm-state-broken" in classes(wizard.nav["install"])
    assert install.history[0].action == "rollback"


def test_install_mismatched_certificate_is_refused_beside_the_cert_input(mailroot, ca):
    make_csr(mailroot)
    root, inter = ca
    other = inter.sign("mail.example.jp", sans=["mail.example.jp"])  # its own key, not the CSR's
    before = tree(mailroot)
    step = InstallStep(mailroot, lang="en")
    step.uploads["chain"].value = upload_value(inter.pem, "inter.pem")
    step.uploads["cert"].value = upload_value(other.pem, "server.crt")
    assert "xm-error" in classes(step.notes["cert"]) and step.notes["cert"].value
    assert "xm-error" in classes(step.message)
    assert step.plan is None and step.apply_button.disabled
    step.apply()
    assert tree(mailroot) == before
    # A file that is not a certificate at all, and one that is too large.
    step.uploads["cert"].value = upload_value(b"hello", "notes.txt")
    assert "xm-error" in classes(step.notes["cert"]) and "notes.txt" in step.notes["cert"].value
    step.uploads["cert"].value = upload_value(b"x" * (1024 * 1024 + 1), "huge.pem")
    assert "xm-error" in classes(step.notes["cert"]) and "huge.pem" in step.notes["cert"].value
    assert tree(mailroot) == before
    assert "Traceback" not in all_text(step)


def test_install_with_an_encrypted_key_needs_its_passphrase(mailroot, ca):
    root, inter = ca
    leaf = inter.sign("mail.example.jp", sans=["mail.example.jp"])
    step = InstallStep(mailroot, lang="en")
    step.uploads["key"].value = upload_value(leaf.key_pem(password=b"s3cret"), "server.key")
    step.uploads["chain"].value = upload_value(inter.pem, "inter.pem")
    step.uploads["cert"].value = upload_value(leaf.pem, "server.crt")
    assert "xm-error" in classes(step.notes["key"]) and step.plan is None
    step.passphrase.value = "wrong"
    assert "xm-error" in classes(step.notes["key"]) and step.plan is None
    step.passphrase.value = "s3cret"
    assert step.plan is not None and not step.notes["key"].value
    step.apply_button.click()
    assert b"ENCRYPTED" not in (mailroot / "server.key").read_bytes()
    # Nothing of the key stays in the widgets once it is installed.
    assert step.uploads["key"].value == () and step.passphrase.value == ""
    assert "PRIVATE KEY" not in all_text(step)


# -- settings --------------------------------------------------------------------------

def test_settings_toggle_changes_only_that_line(mailroot):
    step = SettingsStep(mailroot, lang="en")
    tab = mailroot / "server.tab"
    before = tab.read_bytes()
    box = step.inputs["SSLUseCertsFile"]
    assert "xm-setting-SSLUseCertsFile" in classes(box)
    meaning_off = step.meanings["SSLUseCertsFile"].value
    box.value = not box.value
    assert step.meanings["SSLUseCertsFile"].value != meaning_off  # meaning follows the switch
    step.save_button.click()
    assert "xm-ok" in classes(step.message)
    after = tab.read_bytes()
    changed = [line for line in difflib.ndiff(before.decode().splitlines(), after.decode().splitlines())
               if line[:1] in "+-"]
    assert changed and all("SSLUseCertsFile" in line for line in changed)
    # An invalid value is refused beside its input; nothing changes.
    step.inputs["SmtpConfig"].value = "wanttls"
    step.save_button.click()
    assert "xm-error" in classes(step.notes["SmtpConfig"])
    assert tab.read_bytes() == after


# -- language, checklist, notice --------------------------------------------------------

def test_language_switch_rerenders_every_step(mailroot):
    wizard = Wizard(mailroot, lang="ja")
    assert "xm-app" in classes(wizard) and "xm-lang" in classes(wizard.lang_switch)
    csr = wizard.steps["csr"]
    assert csr.generate_button.description == text("ui.csr.generate", "ja")
    assert "練習" in wizard.practice_text.value
    assert "✖" in wizard.header.value  # the server's state in one line
    summary_ja = wizard.steps["diagnose"].message.value
    wizard.lang_switch.value = "en"
    assert csr.generate_button.description == text("ui.csr.generate", "en") == "Create key and CSR"
    assert wizard.steps["diagnose"].message.value != summary_ja
    assert "Diagnose" in wizard.nav["diagnose"].description
    assert "Practice environment" in wizard.practice_text.value
    assert "Files not ready yet: 2 problems to fix" in wizard.header.value
    assert all(f"xm-nav-{n}" in classes(b) for n, b in wizard.nav.items())


def test_checklist_ticks_persist_across_wizards(mailroot):
    wizard = Wizard(mailroot, lang="en")
    submit = wizard.steps["submit"]
    submit.checks["send"].value = True
    submit.checks["validate"].value = True
    doc = json.loads((mailroot / "sslconf" / "checklist.json").read_text())
    assert doc["ticked"] == ["send", "validate"]
    again = Wizard(mailroot, lang="en").steps["submit"]
    assert again.ticked() == ["send", "validate"]
    # Ticks are notes for the trainee; the step is done when a certificate is at hand.
    for box in again.checks.values():
        box.value = True
    assert again.state is StepState.TODO


def test_acme_choice_shows_the_panel_and_what_it_needs(mailroot):
    step = SubmitStep(mailroot, lang="en")
    step.mode.value = "acme"
    assert step.acme_box.layout.display is None and step.acme_box.children
    assert "port 80" in all_text(step.acme_box) and "not available" not in all_text(step.acme_box)


def test_practice_sign_then_install_the_practice_certificate(mailroot):
    make_csr(mailroot)
    wizard = Wizard(mailroot, lang="en")
    submit, install = wizard.steps["submit"], wizard.steps["install"]
    assert submit.practice_box.layout.display is None
    assert install.use_practice.layout.display == "none"
    submit.practice_sign.click()
    assert "xm-ok" in classes(submit.message) and submit.state is StepState.DONE
    assert install.use_practice.layout.display is None  # refreshed after the change
    install.use_practice.click()
    assert install.plan is not None, install.message.value
    install.apply_button.click()
    assert "xm-ok" in classes(install.message)
    assert (mailroot / "server.cert").exists()


def test_notice_text_names_the_host_and_follows_the_language(mailroot):
    step = NoticeStep(mailroot, lang="en")
    assert "xm-notice-text" in classes(step.text)
    assert "mail.example.jp" in step.text.value
    english = step.text.value
    step.set_lang("ja")
    assert step.text.value != english and "mail.example.jp" in step.text.value
    assert "data:text/plain" in step.download.value
    step.hostname.value = "smtp.example.jp"
    assert "smtp.example.jp" in step.text.value


# -- probe, diagnosis, unusable MailRoot -------------------------------------------------

def test_probe_step_refuses_a_bad_ports_field_beside_it(mailroot):
    step = ProbeStep(mailroot, lang="en")
    assert step.host.value == "127.0.0.1"
    step.ports.value = "smtp=abc"
    step.run_button.click()
    assert "xm-error" in classes(step.ports_note) and step.future is None


def test_probe_the_practice_server_in_a_thread(mailroot):
    make_csr(mailroot)
    wizard = Wizard(mailroot, lang="en")
    wizard.steps["submit"].sign_practice()
    install = wizard.steps["install"]
    install.load_practice()
    install.apply()
    step = wizard.steps["probe"]
    assert step.practice_box.layout.display is None
    step.start_button.click()
    try:
        assert step.server.running and "smtp=" in step.ports.value and "pop3s=" in step.ports.value
        # The ports the page showed are the ones in use.
        assert step.ports.value == f"smtp={step.practice_port['smtp'].value},pop3s={step.practice_port['pop3s'].value}"
        step.run_button.click()
        assert step.wait(30)
        rows = step.rows.children
        assert len(rows) == 2 and all("xm-finding" in classes(r) for r in rows)
        assert {"xm-endpoint-smtp", "xm-endpoint-pop3s"} <= {c for r in rows for c in classes(r)}
        assert all(set(classes(r)) & {"xm-ok", "xm-warn", "xm-error", "xm-info"} for r in rows)
        assert "xm-message" in classes(step.message)
    finally:
        step.stop_button.click()
    assert not step.server.running


def test_diagnose_rows_carry_check_classes(mailroot):
    step = DiagnoseStep(mailroot, lang="en")
    assert {"xm-finding", "xm-error", "xm-check-key-present"} <= set(step.row_classes("key.present"))
    # The classes are on the rows the page shows.
    assert '<div class="xm-finding xm-error xm-check-key-present">' in step.findings.value
    assert "xm-message" in classes(step.message) and "xm-error" in classes(step.message)
    make_csr(mailroot)
    step.refresh_button.click()
    assert "xm-check-csr-pending" in step.row_classes("csr.pending")


def test_unusable_mailroot_is_a_message_not_a_traceback(tmp_path):
    wizard = Wizard(tmp_path / "missing", lang="en")
    assert "does not exist" in wizard.error.value and "xm-error" in classes(wizard.error)
    step = CsrStep(tmp_path / "missing", lang="en")
    assert step.activity is Activity.FAILED and "xm-error" in classes(step.message)
    step.set_lang("ja")
    assert "存在しません" in step.message.value or step.message.value


def test_defaults_are_resolved_when_the_widget_is_created(mailroot, monkeypatch):
    monkeypatch.setenv("XMAILNB_LANG", "ja")
    step = DiagnoseStep()
    assert step.lang == "ja" and step.mailroot.is_sandbox
    assert text("ui.diagnose.title", "ja").split(". ", 1)[1] in step.title.value
    monkeypatch.setenv("MAIL_ROOT", str(mailroot))
    wizard = Wizard()
    assert wizard.mailroot.path == mailroot.resolve() and wizard.lang == "ja"
    # Next opens the following step.
    # Step 1 is open and shows the diagnosis: it has been run (its errors are in the list).
    assert wizard.current == "diagnose" and wizard.steps["diagnose"].state is StepState.DONE
    assert wizard.next_button.layout.display is None
    wizard.next_button.click()
    assert wizard.current == "csr" and wizard.body.children == (wizard.steps["csr"],)
    assert "xm-nav-current" in classes(wizard.nav["csr"])


def test_wizard_builds_only_the_step_shown(mailroot):
    # Each widget is a message to the browser and a model there: the page is
    # fast because the other steps are built when first opened.
    from xmailnb.ui import Wizard

    wizard = Wizard(mailroot, lang="en")
    assert list(wizard.steps.built()) == ["diagnose"]
    wizard.show("install")
    assert list(wizard.steps.built()) == ["diagnose", "install"]
    assert wizard.current == "install"


def _opening(mailroot, monkeypatch, step: str) -> tuple[list[object], list[tuple[str, str]]]:
    """The widgets made when *step* is first opened in the wizard, and the
    updates sent to them during that opening (widget class, trait)."""
    import ipywidgets

    wizard = Wizard(mailroot, lang="en")
    made: list[object] = []
    updates: list[tuple[str, str]] = []
    opened = ipywidgets.Widget.open
    sent = ipywidgets.Widget.send_state

    def open_(self):
        made.append(self)
        return opened(self)

    def send_state(self, key=None):
        if key is not None and any(w is self for w in made):
            keys = [key] if isinstance(key, str) else list(key)
            updates.extend((type(self).__name__, k) for k in keys)
        return sent(self, key)

    monkeypatch.setattr(ipywidgets.Widget, "open", open_)
    monkeypatch.setattr(ipywidgets.Widget, "send_state", send_state)
    wizard.show(step)
    return made, updates


def test_opening_the_csr_form_sends_each_widget_once(mailroot, monkeypatch):
    # Each message is work for the browser while the admin waits for the
    # click on step 2 to answer: a widget is made with its classes, label and
    # layout, not made and then changed (the form once sent 98 class updates
    # and 20 labels after the 129 widgets it made; the benchmark's figure 1).
    made, updates = _opening(mailroot, monkeypatch, "csr")
    assert len(made) < 100  # shared layouts and styles
    assert [u for u in updates if u[1] in ("_dom_classes", "description", "layout", "style")] == []
    # what is left: the form filled in from the MailRoot, rows shown or hidden for the key type
    assert len(updates) <= 8, updates


@pytest.mark.parametrize("step", ["submit", "install", "settings", "probe", "notice"])
def test_every_step_is_made_with_its_classes(mailroot, monkeypatch, step):
    # The same for the other steps: no widget gets its CSS classes one
    # message at a time just after it was made (install sent 38, settings 51).
    # (A message takes its status class when the step's first look at the
    # MailRoot has something to say: that is news, not construction.)
    _made, updates = _opening(mailroot, monkeypatch, step)
    assert [u for u in updates if u[1] in ("_dom_classes", "layout", "style") and u[0] != "Message"] == []


def test_settings_tell_not_set_from_set_to_nothing(mailroot):
    # The diagnosis advises SmtpNoTLSAuths = "" (no AUTH before STARTTLS):
    # the form must be able to write exactly that, and to remove it again.
    from xmailnb.mailroot.servertab import ServerTab

    from xmailnb.ui.settings import EMPTY, UNSET, VALUE

    step = SettingsStep(mailroot, lang="en")
    assert step.modes["SmtpNoTLSAuths"].value == UNSET
    step.modes["SmtpNoTLSAuths"].value = EMPTY
    assert step.changed() == {"SmtpNoTLSAuths": ""}
    step.save()
    assert ServerTab.read(mailroot / "server.tab").get("SmtpNoTLSAuths") == ""
    assert "xm-ok" in classes(step.message)
    step.modes["SmtpNoTLSAuths"].value = UNSET
    assert step.changed() == {"SmtpNoTLSAuths": None}
    step.save()
    assert ServerTab.read(mailroot / "server.tab").get("SmtpNoTLSAuths") is None
    # Typing a value chooses "set to this list" by itself.
    step.inputs["SmtpConfig"].value = "mail-auth"
    assert step.modes["SmtpConfig"].value == VALUE

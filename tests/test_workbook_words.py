"""The core's words for the workbook: what a rollback does, the install
preview, the pending CSR as form values, where a problem is fixed.

One model each, shown by the page and the command line alike (issue 12 item
1, issue 13 items 2 and 3).
"""

from __future__ import annotations

import json

import pytest

from helpers import CLI_TALK, CSR_ARGS, run
from xmailnb.flows import actions, practice
from xmailnb.checks.diagnose import diagnose
from xmailnb.i18n import Msg
from xmailnb.mailroot import resolve
from xmailnb.steps import Step, Target


@pytest.fixture
def mr():
    return resolve(None)


def _install_practice(mr) -> actions.InstallPlan:
    practice.sign_pending_csr(mr)
    issued = practice.issued(mr)
    plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")])
    actions.apply_install(mr, plan)
    return plan


def _both(msgs: list[Msg]) -> str:
    return "\n".join(m.render(lang) for m in msgs for lang in ("en", "ja"))


# -- rollback ------------------------------------------------------------------------

def test_undoing_the_first_install_says_the_pair_is_removed_and_tls_stops(mr):
    assert run("csr", *CSR_ARGS).code == 0
    _install_practice(mr)
    from xmailnb.mailroot.store import Store

    entries = Store(mr).history(bookkeeping=False)
    choices, default = actions.rollback_choices(entries)
    install = next(e for e in entries if e.action == "install")
    assert default == install.id, "undoing the last install is offered first"
    label = dict((e.id, m) for m, e in choices)[install.id]
    assert label.render("en").startswith("Undo the last install")
    assert "mail.example.jp" in label.render("en") and "mail.example.jp" in label.render("ja")
    assert install.id not in label.render("en"), "no archive id shown"

    preview = actions.rollback_preview(mr, install)
    assert preview.names(actions.FileEffect.REMOVE) == ["server.cert", "server.key"]
    lines = preview.file_lines() + preview.consequences()
    text = lines[0].render("en") + " " + " ".join(m.render("en") for m in lines)
    assert "server.cert, server.key" in text and "TLS stops working" in text
    assert "server.cert、server.key" in lines[0].render("ja")

    target, new = actions.rollback(mr, install.id)
    outcome = actions.rollback_outcome(target, new)
    assert outcome.names(actions.FileEffect.REMOVE) == ["server.cert", "server.key"]
    assert outcome.outcome().key == "rollback.done"
    done = outcome.consequences(done=True)
    assert "xmailnb install" in done[0].render("en"), "the command line names its command"
    assert not CLI_TALK.search(done[0].page("en")) and "step 4" in done[0].page("en")

    # Undoing the rollback puts the pair back: XMail serves it again.
    entries = Store(mr).history(bookkeeping=False)
    assert entries[0].action == "rollback"
    again = actions.rollback_preview(mr, entries[0])
    assert again.names(actions.FileEffect.RESTORE) == ["server.cert", "server.key"]
    assert [m.key for m in again.consequences()] == ["rollback.effect.cert_back"]


def test_rollback_labels_are_distinct_and_in_local_time(mr):
    from xmailnb.mailroot.store import Store

    for _ in range(3):
        assert run("csr", *CSR_ARGS).code == 0
    entries = Store(mr).history(bookkeeping=False)
    choices, default = actions.rollback_choices(entries)
    for lang in ("en", "ja"):
        shown = [m.render(lang) for m, _e in choices]
        assert len(set(shown)) == len(shown), shown
    assert default == entries[0].id, "no install: the newest change comes first"
    assert not any(e.id in m.render("en") for m, e in choices)


def test_nothing_to_change_is_said(mr):
    from xmailnb.mailroot.store import Store

    assert run("settings", "--set", "SSLUseCertsFile=1").code == 0
    entry = Store(mr).history(bookkeeping=False)[0]
    assert [m.key for m in actions.rollback_preview(mr, entry).consequences()] == ["rollback.effect.settings"]
    actions.rollback(mr, entry.id)
    # Already rolled back to it: nothing would change, and it says so.
    preview = actions.rollback_preview(mr, entry)
    assert not preview.changes_anything and preview.file_lines() == []
    target, new = actions.rollback(mr, entry.id)
    assert actions.rollback_outcome(target, new).outcome().key == "rollback.unchanged"


def test_cli_rollback_says_what_it_did(mr):
    assert run("csr", *CSR_ARGS).code == 0
    _install_practice(mr)
    r = run("rollback", "--lang", "en")
    assert r.code == 0
    assert "Removed: server.cert, server.key" in r.err and "TLS does not work now" in r.err


# -- install preview ------------------------------------------------------------------

def test_install_preview_is_one_model_for_page_and_cli(mr):
    assert run("csr", *CSR_ARGS).code == 0
    practice.sign_pending_csr(mr)
    issued = practice.issued(mr)
    plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")])
    lines = plan.preview()
    keys = [m.key for m in lines]
    assert keys[:3] == ["preview.leaf", "preview.issuer", "preview.validity"]
    assert "preview.intermediate" in keys and keys[-1] == "preview.written"
    assert "practice CA" in _both(lines)
    r = run("install", "--dry-run", "--lang", "en", "--cert", str(issued.server), "--chain", str(issued.intermediate))
    assert r.code == 0
    for line in lines:
        assert line.render("en") in r.out


# -- the pending CSR as form values ----------------------------------------------------

def test_pending_form_values_come_back_as_entered(mr):
    assert run("csr", *CSR_ARGS, "--aliases", "smtp.example.jp", "--memo", "order 42",
               "--key-type", "ec", "--curve", "P-384").code == 0
    values = actions.pending_form_values(mr)
    assert values["cn"] == "mail.example.jp" and values["aliases"] == "smtp.example.jp"
    assert values["country"] == "JP" and values["memo"] == "order 42"
    assert values["keytype"] == "ec" and values["curve"] == "P-384"
    # Without the record beside it, the CSR itself says the same.
    mr.pending_meta.unlink()
    again = actions.pending_form_values(mr)
    assert again["cn"] == "mail.example.jp" and again["aliases"] == "smtp.example.jp"


def test_pending_form_values_leave_out_a_key_the_form_does_not_offer(mr):
    # A CSR made elsewhere (or by an older release) with a key size or a
    # curve the form has no choice for: the form keeps its default there.
    assert run("csr", *CSR_ARGS).code == 0
    meta = json.loads(mr.pending_meta.read_text())
    for key, expected in (("RSA 8192", {"keytype": "rsa"}), ("RSA 3072", {"keytype": "rsa", "keysize": "3072"}),
                          ("EC P-521", {"keytype": "ec"}), ("EC P-256", {"keytype": "ec", "curve": "P-256"})):
        mr.pending_meta.write_text(json.dumps(dict(meta, key=key)))
        values = actions.pending_form_values(mr)
        assert {k: v for k, v in values.items() if k in ("keytype", "keysize", "curve")} == expected, key


def test_the_record_beside_the_pending_csr_keeps_its_form_and_bad_values_are_left_out(mr):
    assert run("csr", *CSR_ARGS, "--aliases", "smtp.example.jp", "--memo", "order 42").code == 0
    text = mr.pending_meta.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert list(doc) == ["created", "memo", "subject", "sans", "key", "key_source", "csr_sha256",
                         "public_key_sha256"]
    meta = actions.read_pending_meta(mr)
    assert meta is not None and json.dumps(meta.to_json(), indent=2, ensure_ascii=False) + "\n" == text
    assert meta.sans == ("mail.example.jp", "smtp.example.jp") and meta.key_source == "new"
    # A hand-edited record: values of the wrong type are dropped, not trusted.
    mr.pending_meta.write_text(json.dumps(dict(doc, memo=7, sans=["x.example.jp", 3], subject={"cn": ["a"]})))
    edited = actions.read_pending_meta(mr)
    assert edited is not None and (edited.memo, edited.sans, edited.subject["cn"]) == ("", ("x.example.jp",), None)
    mr.pending_meta.write_text("[]")
    assert actions.read_pending_meta(mr) is None
    assert actions.pending_form_values(mr)["cn"] == "mail.example.jp"  # from the CSR itself


def test_no_pending_csr_takes_the_host_name_from_server_tab_when_asked(mr):
    assert actions.pending_form_values(mr) == {}
    assert actions.pending_form_values(mr, hostname_fallback=True) == {"cn": "mail.example.jp"}


# -- where a problem is fixed --------------------------------------------------------------

def test_problems_of_a_fresh_sandbox_point_to_their_step(mr):
    report = diagnose(mr)
    by = {f.check: f for f in report.findings}
    assert by["key.present"].target == Target(Step.CSR, "xm-csr-generate")
    assert by["cert.present"].target == Target(Step.INSTALL, "xm-install-cert")
    assert by["cert.pair"].status == "info" and by["cert.pair"].target is None
    # Skipped checks say which check and why, each differently.
    skipped = [f for f in report.findings if f.details.get("skipped")]
    assert len(skipped) >= 5
    texts = [f.message.render("en") for f in skipped]
    assert len(set(texts)) == len(texts)
    assert report.to_json("en")["findings"][4]["target"] == {"step": "install", "control": "xm-install-cert"}


# -- words a trainee found wrong (issue 18 section 6) -------------------------------------

def test_undoing_a_rollback_is_asked_in_plain_words(mr):
    from xmailnb.i18n import format_datetime
    from xmailnb.mailroot.store import Store

    assert run("settings", "--set", "SSLUseCertsFile=1").code == 0
    actions.rollback(mr)
    entry = Store(mr).history(bookkeeping=False)[0]
    assert entry.action == "rollback"
    when = format_datetime(actions.entry_time(entry))
    preview = actions.rollback_preview(mr, entry)
    assert preview.question().render("en") == (
        f"Undo the rollback of {when}? The files it changed go back to how they were just before it.")
    assert preview.question().render("ja") == (
        f"{when} のロールバックを取り消しますか？ そのロールバックで変わったファイルが、その直前の状態に戻ります。")
    target, new = actions.rollback(mr, entry.id)
    assert actions.rollback_outcome(target, new).outcome().render("en") == (
        f"The rollback of {when} is undone: the files are as they were just before it.")


def test_a_full_width_country_code_is_called_full_width():
    from xmailnb.errors import XmailnbError
    from xmailnb.pki import csr as csrmod

    with pytest.raises(XmailnbError) as caught:
        csrmod.request_from_values({"country": "ＪＰ", "state": "Tokyo", "locality": "Chiyoda-ku",
                                    "org": "Example Co., Ltd.", "cn": "mail.example.jp"})
    assert caught.value.msg.render("ja") == "ＪＰ は全角文字です。国名コードは半角の英字 2 文字で JP と入力してください。"
    assert caught.value.msg.render("en") == (
        "ＪＰ is typed in full-width letters: type the two letters in half-width (ASCII), JP.")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_settings_choices_say_different_things_and_flags_say_their_value(mr, lang):
    from xmailnb.ui.settings import SettingsStep

    step = SettingsStep(mr, lang=lang)
    for name, mode in step.modes.items():
        labels = [label for label, _value in mode.options]
        assert len(set(labels)) == 3, (name, labels)
    off, on = ("Off (0)", "On (1)") if lang == "en" else ("オフ（0）", "オン（1）")
    assert step.inputs["SSLWantCert"].value is False
    assert step.inputs["SSLWantCert"].description == off
    step.inputs["SSLWantCert"].value = True
    assert step.inputs["SSLWantCert"].description == on
    assert step.inputs["EnableSMTP-TLS"].description == on, "XMail's default"
    step.set_lang("en" if lang == "ja" else "ja")
    assert step.inputs["SSLWantCert"].description == ("On (1)" if lang == "ja" else "オン（1）")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_step_5_does_not_send_the_reader_to_step_5(mr, lang):
    from xmailnb.ui.settings import SettingsStep

    actions.change_settings(mr, {"SSLWantCert": "1", "SSLWantVerify": "1", "SmtpNoTLSAuths": "LOGIN,PLAIN",
                                 "EnablePOP3-TLS": "0"})
    step = SettingsStep(mr, lang=lang)
    shown = step.issues.value
    assert "SSLWantCert" in shown and "SmtpNoTLSAuths" in shown
    assert ("step 5" not in shown) if lang == "en" else ("手順 5" not in shown)

"""Step progress: the one rule the stepper, the CLI, the notebooks and the
classroom board share (DESIGN.md section 6), walked through a sandbox flow.

Each test states the marks of all seven steps as the stepper shows them.
"""

from __future__ import annotations

import datetime as dt

import pytest

from helpers import CSR_ARGS, run
from xmailnb import clock
from xmailnb.checks import progress
from xmailnb.checks.diagnose import diagnose
from xmailnb.checks.findings import Report
from xmailnb.checks.progress import Step, StepState
from xmailnb.mailroot.layout import REL_PROGRESS_LOG
from xmailnb.flows import actions, practice
from xmailnb.i18n import render
from xmailnb.mailroot.resolve import resolve

_MARK = {StepState.TODO: "○", StepState.DONE: "✔", StepState.ATTENTION: "⚠", StepState.BROKEN: "✖"}


def marks(mr) -> str:
    """The stepper's marks, e.g. ``1✔ 2✔ 3○ 4○ 5✔ 6○ 7○``."""
    p = progress.step_progress(mr)
    return " ".join(f"{step.number}{_MARK[state]}" for step, state in p.states.items())


def headline(mr, lang: str = "en") -> str:
    _status, msgs = progress.step_progress(mr).headline()
    return " — ".join(render(m, lang) for m in msgs)


@pytest.fixture
def mr():
    sandbox = resolve(None)
    assert sandbox.is_sandbox
    return sandbox


def _install_practice(mr):
    issued = practice.issued(mr)
    plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")],
                                hostname="mail.example.jp")
    actions.apply_install(mr, plan)


def _signed_and_installed(mr):
    assert run("csr", *CSR_ARGS).code == 0
    practice.sign_pending_csr(mr)
    _install_practice(mr)


def test_sandbox_flow_marks_every_step_as_the_server_is_now(mr):
    assert marks(mr) == "1○ 2○ 3○ 4○ 5✔ 6○ 7○", "fresh: only XMail's default settings hold"

    assert run("diagnose").code != 0  # a fresh sandbox has problems; the diagnosis ran all the same
    assert marks(mr) == "1✔ 2○ 3○ 4○ 5✔ 6○ 7○"

    assert run("csr", *CSR_ARGS).code == 0
    assert marks(mr) == "1✔ 2✔ 3○ 4○ 5✔ 6○ 7○"

    for item in actions.CHECKLIST:
        actions.tick_checklist(mr, item, True)
    assert marks(mr) == "1✔ 2✔ 3○ 4○ 5✔ 6○ 7○", "ticks are notes: nothing is signed yet"

    practice.sign_pending_csr(mr)
    assert marks(mr) == "1✔ 2✔ 3✔ 4○ 5✔ 6○ 7○"

    _install_practice(mr)
    # The practice CA's "training only" note is expected in the sandbox: not a warning here.
    assert marks(mr) == "1✔ 2✔ 3✔ 4✔ 5✔ 6○ 7○"

    progress.record_probe(mr, passed=True, worst="ok", failed=0, total=4)
    progress.record_notice(mr)
    assert marks(mr) == "1✔ 2✔ 3✔ 4✔ 5✔ 6✔ 7✔"

    actions.rollback(mr)  # undo the install: server.cert and server.key removed
    # The key, CSR and signed certificate still wait; server.tab was not touched;
    # the check and the notice were for a certificate no longer installed.
    assert marks(mr) == "1✔ 2✔ 3✔ 4✖ 5✔ 6✖ 7✖"


def test_settings_mark_reads_server_tab_alone(mr):
    actions.change_settings(mr, {"SSLWantCert": "1"})
    assert marks(mr) == "1○ 2○ 3○ 4○ 5⚠ 6○ 7○", "refuses every mail program without a client certificate"
    actions.change_settings(mr, {"SSLWantCert": None, "EnableSMTP-TLS": "0"})
    assert marks(mr) == "1○ 2○ 3○ 4○ 5✖ 6○ 7○", "STARTTLS turned off on SMTP"
    actions.rollback(mr)
    assert marks(mr) == "1○ 2○ 3○ 4○ 5⚠ 6○ 7○"


def test_a_csr_for_another_host_name_is_a_warning(mr):
    args = list(CSR_ARGS)
    args[args.index("--cn") + 1] = "www.example.jp"
    assert run("csr", *args).code == 0
    assert marks(mr) == "1○ 2⚠ 3○ 4○ 5✔ 6○ 7○"


def test_a_new_key_after_signing_breaks_the_signed_step(mr):
    assert run("csr", *CSR_ARGS).code == 0
    practice.sign_pending_csr(mr)
    assert run("csr", *CSR_ARGS).code == 0  # a new key: the certificate was issued for the old one
    assert marks(mr) == "1○ 2✔ 3✖ 4○ 5✔ 6○ 7○"


def test_a_waiting_key_that_does_not_match_its_csr_is_broken(mr):
    assert run("csr", *CSR_ARGS).code == 0
    first_key = mr.pending_key.read_bytes()
    assert run("csr", *CSR_ARGS).code == 0
    mr.pending_key.write_bytes(first_key)
    assert marks(mr) == "1○ 2✖ 3○ 4○ 5✔ 6○ 7○"


def test_live_check_failed_then_passed_then_new_certificate(mr, frozen_now):
    _signed_and_installed(mr)
    progress.record_probe(mr, passed=False, worst="error", failed=3, total=4)
    assert marks(mr) == "1○ 2✔ 3✔ 4✔ 5✔ 6✖ 7○"
    at = f"{frozen_now.astimezone():%H:%M}"
    assert headline(mr) == f"Live check failed at {at} (3 of 4 endpoints)"
    assert headline(mr, "ja") == f"{at} のサーバー確認で失敗しました（4 か所中 3 か所）"

    progress.record_probe(mr, passed=True, worst="ok", failed=0, total=4)
    assert marks(mr) == "1○ 2✔ 3✔ 4✔ 5✔ 6✔ 7○"
    assert headline(mr) == f"Live check passed at {at}"

    with clock.frozen(frozen_now + dt.timedelta(minutes=5)):
        _signed_and_installed(mr)
        assert marks(mr) == "1○ 2✔ 3✔ 4✔ 5✔ 6✖ 7○", "the certificate changed since the check passed"
        # The check no longer speaks for the files installed now.
        assert headline(mr) == "Files ready; the server has not been checked with them yet (step 6)"


def test_headline_names_the_files_as_its_source_before_any_live_check(mr):
    assert headline(mr) == "Files not ready yet: 2 problems to fix"
    assert headline(mr, "ja") == "ファイルはまだ準備できていません（直す問題 2 件）"
    _signed_and_installed(mr)
    assert headline(mr) == "Files ready; the server has not been checked with them yet (step 6)"
    actions.rollback(mr)
    assert headline(mr) == "Files no longer ready: 2 problems to fix"


def test_a_report_without_the_certificate_check_does_not_crash(mr):
    # Issue 20: the lookup raises KeyError, not StopIteration.
    _signed_and_installed(mr)
    full = diagnose(mr)
    partial = Report(mailroot=mr, findings=[f for f in full.findings if f.check != "cert.present"],
                     hostname=full.hostname)
    p = progress.progress_of(mr, partial)
    assert " ".join(str(p[s]) for s in Step) == "todo done done broken done todo todo"


def test_reload_opens_the_step_last_shown(mr):
    assert progress.last_step(mr) is None
    progress.record_step(mr, Step.INSTALL)
    progress.record_step(mr, "install")
    assert progress.last_step(mr) is Step.INSTALL
    assert [e["step"] for e in progress.events(mr) if e["event"] == "step"] == ["install"], "written once"


def test_progress_log_is_private_and_tolerates_garbage(mr):
    progress.record_notice(mr)
    log = mr.file(REL_PROGRESS_LOG)
    assert log.stat().st_mode & 0o077 == 0
    with open(log, "ab") as fh:
        fh.write(b"not json\n\xff\xfe\n[1, 2]\n")
    assert len(progress.events(mr)) == 1


def test_every_state_is_exactly_one_of_the_four(mr):
    p = progress.step_progress(mr)
    assert list(p.states) == list(Step)
    assert all(isinstance(v, StepState) for v in p.states.values())


def test_on_a_live_mailroot_received_means_install_it_and_a_new_csr_waits_for_its_certificate(mailroot):
    from xmailnb.mailroot.layout import MailRoot, SANDBOX_MARKER

    (mailroot / SANDBOX_MARKER).unlink()
    live = MailRoot(mailroot)
    assert run("csr", "--mailroot", str(mailroot), *CSR_ARGS).code == 0
    actions.tick_checklist(live, "receive", True)
    assert marks(live) == "1○ 2✔ 3⚠ 4○ 5✔ 6○ 7○", "received from the CA: install it in step 4"
    # A renewal: the certificate in use stays, a new key and CSR wait for theirs.
    trainer = MailRoot(mailroot, is_sandbox=True)  # the practice CA stands in for the real one
    practice.sign_pending_csr(trainer)
    _install_practice(trainer)
    mailroot.joinpath("sslconf/practice-ca/issued/server.crt").unlink()
    # On a live MailRoot the practice CA is no public CA: a mail client would warn.
    assert marks(live) == "1○ 2✔ 3✔ 4⚠ 5✔ 6○ 7○"
    actions.tick_checklist(live, "receive", False)
    assert run("csr", "--mailroot", str(mailroot), *CSR_ARGS).code == 0
    assert marks(live) == "1○ 2✔ 3○ 4⚠ 5✔ 6○ 7○"

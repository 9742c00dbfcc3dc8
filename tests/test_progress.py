"""Step progress: the one rule the stepper, the CLI and the classroom board share."""

from __future__ import annotations

import pytest

from helpers import CSR_ARGS, run
from xmailnb.flows import actions, practice
from xmailnb.checks import progress
from xmailnb.mailroot.resolve import resolve
from xmailnb.checks.progress import Step, StepState


def states(mr) -> dict[str, str]:
    return {str(k): str(v) for k, v in progress.step_progress(mr).states.items()}


@pytest.fixture
def mr():
    return resolve(None)


def _install_practice(mr):
    practice.sign_pending_csr(mr)
    issued = practice.issued(mr)
    plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")],
                                hostname="mail.example.jp")
    actions.apply_install(mr, plan)


def test_fresh_sandbox_has_nothing_done(mr):
    assert set(states(mr).values()) == {"todo"}


def test_whole_flow_then_rollback_breaks_what_depended_on_the_install(mr):
    assert run("csr", *CSR_ARGS).code == 0
    s = states(mr)
    assert s["csr"] == "done" and s["submit"] == "todo" and s["install"] == "todo"
    assert s["settings"] == "todo", "settings wait for a certificate"

    practice.sign_pending_csr(mr)
    assert states(mr)["submit"] == "done"

    issued = practice.issued(mr)
    plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")],
                                hostname="mail.example.jp")
    actions.apply_install(mr, plan)
    s = states(mr)
    # A practice certificate is installed but not publicly trusted: a warning.
    assert s["install"] == "attention"
    assert s["settings"] in ("done", "attention")
    assert s["probe"] == "todo" and s["notice"] == "todo", "not visited yet"

    progress.record_probe(mr, passed=True, worst="info")
    progress.record_notice(mr)
    s = states(mr)
    assert s["probe"] == "done" and s["notice"] == "done"

    actions.rollback(mr)  # undo the install: server.cert and server.key removed
    s = states(mr)
    assert s["install"] == "broken"
    assert s["probe"] == "broken" and s["notice"] == "broken"
    assert s["diagnose"] == "broken"
    assert s["csr"] == "done", "the key and CSR are still there"


def test_failed_check_after_install_is_not_done(mr):
    assert run("csr", *CSR_ARGS).code == 0
    _install_practice(mr)
    progress.record_probe(mr, passed=False, worst="error")
    assert states(mr)["probe"] == "todo"
    progress.record_probe(mr, passed=True, worst="ok")
    assert states(mr)["probe"] == "done"
    progress.record_probe(mr, passed=False, worst="error")
    assert states(mr)["probe"] == "broken", "it passed for this certificate, now it fails"


def test_new_certificate_asks_for_a_new_check(mr):
    assert run("csr", *CSR_ARGS).code == 0
    _install_practice(mr)
    progress.record_probe(mr, passed=True, worst="ok")
    progress.record_notice(mr)
    assert run("csr", *CSR_ARGS).code == 0
    _install_practice(mr)
    s = states(mr)
    assert s["probe"] == "todo" and s["notice"] == "todo"


def test_progress_log_is_private_and_tolerates_garbage(mr):
    progress.record_notice(mr)
    log = mr.file(progress.REL_PROGRESS_LOG)
    assert log.stat().st_mode & 0o077 == 0
    with open(log, "ab") as fh:
        fh.write(b"not json\n\xff\xfe\n[1, 2]\n")
    assert len(progress.events(mr)) == 1


def test_every_state_is_exactly_one_of_the_four(mr):
    p = progress.step_progress(mr)
    assert list(p.states) == list(Step)
    assert all(isinstance(v, StepState) for v in p.states.values())

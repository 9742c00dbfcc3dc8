"""The workbook's core actions in random order on a sandbox never end in an
unexpected error (issue 19 §4).

Hypothesis drives a trainee who does things in any order: make a key and
CSR, have the practice CA sign it, install (the practice certificate, or a
file that is not one), roll back, change a TLS setting, run the live check
against the practice server or against a stub server that sends a
certificate of its own, and print the notice.  Every step goes through the
command as a user runs it (in-process, ``tests/helpers.run``): refusals are
fine and expected; an "Unexpected internal error", a probe that "stopped on
something unexpected", a traceback or an unknown exit status is a bug.  The
stub case is the one that once ended in ``IndexError`` (a sandbox with no
certificate installed, checked against a server that sends one).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import pki
from helpers import CSR_ARGS, run, sandbox_copy
from test_probe import tls_server
from xmailnb.flows.practice import PracticeServer

#: What a command may end with (README: exit status).
EXIT_STATUSES = {0, 1, 2, 3}
UNEXPECTED = ("Unexpected internal error", "stopped on something unexpected", "Traceback")


class Stub:
    """A TLS server on 127.0.0.1 that sends its own certificate (not the sandbox's)."""

    def __init__(self, folder: Path) -> None:
        h = pki.hierarchy("mail.example.jp")
        self.server = tls_server(folder, h.chain_pem, h.leaf.key_pem(), "stub")
        self.port = self.server.port

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    server = Stub(tmp_path_factory.mktemp("stub"))
    yield server
    server.close()


class Workbook(RuleBasedStateMachine):
    """One trainee's sandbox, acted on in any order."""

    stub_port = 0

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="xmailnb-stateful-"))
        self.root: Path | None = None
        self.issued: dict[str, str] = {}
        self.outputs: list[str] = []

    @initialize()
    def sandbox(self) -> None:
        self.root = sandbox_copy(self.folder / "MailRoot")

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def cli(self, *argv: str) -> object:
        assert self.root is not None
        result = run(*argv, "--mailroot", str(self.root), "--lang", "en")
        text = result.out + result.err
        assert result.code in EXIT_STATUSES, (argv, result.code, text)
        for bad in UNEXPECTED:
            assert bad not in text, (argv, text)
        self.outputs.append(text)
        return result

    # -- the actions -------------------------------------------------------------------
    @rule(renew=st.booleans())
    def csr(self, renew: bool) -> None:
        self.cli("csr", *CSR_ARGS, *(["--renew"] if renew else []))

    @rule()
    def practice_sign(self) -> None:
        result = self.cli("practice-ca", "sign", "--json")
        if result.code == 0:
            self.issued = json.loads(result.out)["files"]

    @rule(with_chain=st.booleans())
    def install_practice(self, with_chain: bool) -> None:
        if not self.issued:
            return
        chain = ["--chain", self.issued["intermediate"]] if with_chain else []
        self.cli("install", "--cert", self.issued["server"], *chain)

    @rule()
    def install_not_a_certificate(self) -> None:
        junk = self.folder / "not-a-cert.pem"
        junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        assert self.cli("install", "--cert", str(junk)).code == 1

    @rule()
    def rollback(self) -> None:
        self.cli("rollback")

    @rule(name=st.sampled_from(["EnableSMTP-TLS", "EnablePOP3-TLS", "SSLWantCert"]), value=st.sampled_from("01"))
    def setting(self, name: str, value: str) -> None:
        self.cli("settings", "--set", f"{name}={value}")

    @rule()
    def probe_stub(self) -> None:
        result = self.cli("probe", "--ports", f"pop3s={self.stub_port}", "--timeout", "3", "--json")
        problems = [e["problem"] for e in json.loads(result.out)["endpoints"]]
        assert "unexpected" not in problems, result.out

    @rule()
    def probe_practice_server(self) -> None:
        from xmailnb.mailroot.resolve import resolve

        with PracticeServer(resolve(self.root)) as server:
            ports = ",".join(f"{name}={port}" for name, port in server.ports.items())
            result = self.cli("probe", "--ports", ports, "--timeout", "3", "--json")
        problems = [e["problem"] for e in json.loads(result.out)["endpoints"]]
        assert "unexpected" not in problems, result.out

    @precondition(lambda self: self.root is not None)
    @rule()
    def notice(self) -> None:
        self.cli("notice")

    @rule()
    def diagnose(self) -> None:
        self.cli("diagnose", "--json")

    @invariant()
    def nothing_unexpected_so_far(self) -> None:
        assert not any(bad in text for text in self.outputs for bad in UNEXPECTED)


def test_actions_in_any_order_never_end_in_an_unexpected_error(stub):
    Workbook.stub_port = stub.port
    machine = Workbook.TestCase
    machine.settings = settings(max_examples=12, stateful_step_count=10, deadline=None,
                                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    machine().runTest()


def test_the_stub_case_that_once_ended_in_indexerror(stub, tmp_path):
    # The sequence of issue 19 §4, spelled out: a fresh sandbox (nothing
    # installed) checked against a server that sends a certificate.
    Workbook.stub_port = stub.port
    machine = Workbook()
    try:
        machine.sandbox()
        machine.probe_stub()
        machine.csr(renew=False)
        machine.practice_sign()
        machine.probe_stub()
        machine.install_practice(with_chain=True)
        machine.probe_practice_server()
        machine.rollback()
        machine.probe_stub()
        machine.notice()
        machine.nothing_unexpected_so_far()
    finally:
        machine.teardown()

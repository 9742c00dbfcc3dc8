"""Every command's output as a person reads it (stdout and stderr), in
English and Japanese, and its --json document, for the main cases: a walk
through the sandbox flow from a fresh MailRoot to a rollback."""

from __future__ import annotations

import shlex

import pytest

import pki
from helpers import CSR_ARGS, run
from xmailnb.flows import practice
from xmailnb.mailroot.sandbox import create_sandbox


def shown(argv: tuple[str, ...]) -> str:
    """A command and what it printed, as one text to approve."""
    result = run(*argv)
    command = shlex.join(["xmailnb", *argv])
    return (f"$ {command}\n[exit {result.code}]\n"
            f"--- stdout\n{result.out}--- stderr\n{result.err}")


@pytest.fixture(params=["en", "ja"])
def lang(request):
    return request.param


@pytest.fixture
def mr(tmp_path):
    return create_sandbox(tmp_path / "MailRoot")


class Cli:
    """Runs commands on one MailRoot in one language and approves each output."""

    def __init__(self, mr, lang, approve):
        self.mr, self.lang, self.approve = mr, lang, approve

    def __call__(self, name: str, *argv: str, json: bool = False, mailroot: bool = True) -> None:
        common = ("--mailroot", str(self.mr.path), "--lang", self.lang) if mailroot else ("--lang", self.lang)
        full = (argv[0], *common, *argv[1:], *(("--json",) if json else ()))
        if argv[0] == "practice-ca":
            full = (argv[0], argv[1], *common, *argv[2:], *(("--json",) if json else ()))
        self.approve(shown(full), name)


@pytest.fixture
def cli(mr, lang, approve):
    return Cli(mr, lang, approve)


def test_sandbox(cli):
    # The practice sandbox itself (in XMAILNB_DATA_DIR), not a MailRoot given.
    cli("sandbox", "sandbox", mailroot=False)
    cli("sandbox-json", "sandbox", json=True, mailroot=False)
    cli("sandbox-reset-unconfirmed", "sandbox", "--reset", mailroot=False)
    cli("sandbox-reset", "sandbox", "--reset", "--yes", mailroot=False)


def test_diagnose_fresh(cli):
    cli("diagnose", "diagnose")
    cli("diagnose-json", "diagnose", json=True)


def test_csr_and_practice_ca(cli):
    cli("csr", "csr", *CSR_ARGS, "--aliases", "smtp.example.jp")
    cli("csr-refused-bad-country", "csr", *CSR_ARGS[:1], "Japan", *CSR_ARGS[2:])
    cli("practice-ca-sign", "practice-ca", "sign")
    cli("practice-ca-sign-json", "practice-ca", "sign", json=True)
    cli("diagnose-signed", "diagnose")


def test_csr_json(cli):
    cli("csr-json", "csr", *CSR_ARGS, json=True)


@pytest.fixture
def issued(cli):
    """The sandbox with a CSR the practice CA signed (not installed yet)."""
    assert run("csr", "--mailroot", str(cli.mr.path), *CSR_ARGS).code == 0
    return practice.sign_pending_csr(cli.mr)


def test_install(cli, issued, scrub):
    cert, chain = str(issued.server), str(issued.intermediate)
    cli("install-preview", "install", "--cert", cert, "--chain", chain, "--dry-run")
    cli("install-preview-json", "install", "--cert", cert, "--chain", chain, "--dry-run", json=True)
    cli("install", "install", "--cert", cert, "--chain", chain)
    cli("diagnose-installed", "diagnose")
    cli("notice-practice", "notice")
    cli("history", "history")
    cli("history-json", "history", json=True)
    cli("rollback", "rollback")
    cli("rollback-json", "rollback", json=True)
    cli("rollback-refused-unknown-id", "rollback", "--to", "19990101T000000000000Z")
    cli("notice-refused-not-covered", "notice", "--hostname", "other.example.jp")


def test_install_refusals(cli, issued, tmp_path):
    cert = str(issued.server)
    other = pki.hierarchy()
    (tmp_path / "other.crt").write_bytes(other.leaf.pem)
    (tmp_path / "other-int.crt").write_bytes(other.intermediate.pem)
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    cli("install-refused-no-chain", "install", "--cert", cert)
    cli("install-refused-other-key", "install", "--cert", str(tmp_path / "other.crt"),
        "--chain", str(tmp_path / "other-int.crt"))
    cli("install-refused-unrelated-intermediate", "install", "--cert", cert,
        "--chain", str(tmp_path / "other-int.crt"))
    cli("install-refused-not-a-certificate", "install", "--cert", str(tmp_path / "notes.txt"))
    cli("install-refused-json", "install", "--cert", str(tmp_path / "other.crt"), json=True)


def test_settings(cli):
    cli("settings", "settings")
    cli("settings-set", "settings", "--set", "SSLUseCertsFile=1")
    cli("settings-refused", "settings", "--set", "SSLUseCertsFile=maybe")
    cli("settings-unknown", "settings", "--set", "NoSuchVariable=1")
    cli("settings-json", "settings", json=True)
    cli("settings-unset", "settings", "--unset", "SSLUseCertsFile")


def test_probe_the_practice_server(cli, issued, scrub):
    assert run("install", "--mailroot", str(cli.mr.path), "--cert", str(issued.server),
               "--chain", str(issued.intermediate)).code == 0
    with practice.PracticeServer(cli.mr) as server:
        ports = server.ports
        for name, port in ports.items():
            scrub.register(port, f"<port:{name}>")
        spec = ",".join(f"{name}={port}" for name, port in ports.items())
        cli("probe", "probe", "--host", "127.0.0.1", "--ports", spec, "--servername", "mail.example.jp")
        cli("probe-json", "probe", "--host", "127.0.0.1", "--ports", spec, "--servername", "mail.example.jp",
            json=True)
    cli("probe-refused", "probe", "--host", "127.0.0.1", "--ports", "smtp=99999")

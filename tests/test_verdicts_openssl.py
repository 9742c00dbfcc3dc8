"""Differential test: xmailnb install accepts exactly what OpenSSL accepts.

Every chain of the corpus (tests/verdict_corpus.py, made at test time) goes
through

    xmailnb install --dry-run --json --ca ROOT --hostname NAME --cert LEAF --chain ... --key KEY

and through

    openssl verify -purpose sslserver -verify_hostname NAME -attime T -CAfile ROOT -untrusted ... LEAF

at the same instant T (the product's frozen clock).  Both must accept or
both refuse, except for the deliberate differences the case names
(``differs``), each documented in verdict_corpus.STRICTER/INCLUSIVE and in
docs/verdicts.md.
"""

from __future__ import annotations

import io
import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

import verdict_corpus as vc
from helpers import sandbox_copy
from xmailnb import clock
from xmailnb.cli.main import main

pytestmark = [pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed"),
              pytest.mark.slow]  # openssl subprocesses

AT = clock.now().replace(microsecond=0)
with clock.frozen(AT):
    CASES = vc.corpus(AT)
BY_NAME = {c.name: c for c in CASES}
LIBRARY_WORDS = ("validation failed", "ParseError", "Traceback", "VerificationError", "candidates exhausted")


@dataclass
class Outcome:
    openssl_ok: bool
    openssl_said: str
    code: int
    doc: dict
    err: str

    @property
    def xmailnb_ok(self) -> bool:
        return self.code == 0


def _pem(certs) -> bytes:
    return b"".join(c.pem for c in certs)


def _write_inputs(case: vc.Case, work: Path) -> list[str]:
    """The files xmailnb gets, packaged as case.fmt says; returns the argv part."""
    def w(name: str, data: bytes) -> str:
        (work / name).write_bytes(data)
        return str(work / name)

    argv = ["--ca", w("ca.pem", _pem(case.trusted)), "--key", w("key.pem", case.leaf.key_pem)]
    chain = case.chain
    fmt = case.fmt
    if fmt in ("pem", "crlf"):
        conv = (lambda b: b.replace(b"\n", b"\r\n")) if fmt == "crlf" else (lambda b: b)
        argv += ["--cert", w("leaf.pem", conv(case.leaf.pem))]
        if chain:
            argv += ["--chain", w("chain.pem", conv(_pem(chain)))]
    elif fmt == "der":
        argv += ["--cert", w("leaf.der", case.leaf.der)]
        for i, c in enumerate(chain):
            argv += ["--chain", w(f"chain{i}.der", c.der)]
    elif fmt in ("p7b", "p7b-pem"):
        enc = serialization.Encoding.DER if fmt == "p7b" else serialization.Encoding.PEM
        argv += ["--cert", w("leaf.pem", case.leaf.pem),
                 "--chain", w("chain.p7b", pkcs7.serialize_certificates([c.cert for c in chain], enc))]
    elif fmt == "bundle":
        argv += ["--cert", w("bundle.pem", case.leaf.pem + _pem(chain))]
    elif fmt == "separate":
        argv += ["--cert", w("leaf.pem", case.leaf.pem)]
        for i, c in enumerate(chain):
            argv += ["--chain", w(f"chain{i}.pem", c.pem)]
    elif fmt == "p12":
        p12 = pkcs12.serialize_key_and_certificates(
            b"mail", case.leaf.key, case.leaf.cert, [c.cert for c in chain] or None,
            serialization.BestAvailableEncryption(b"secret"))
        argv = ["--ca", argv[1], "--cert", w("server.p12", p12), "--passphrase-file", w("pass", b"secret\n")]
    else:  # pragma: no cover - a corpus typo
        raise AssertionError(fmt)
    return argv


def _openssl(case: vc.Case, work: Path) -> tuple[bool, str]:
    (work / "o-ca.pem").write_bytes(_pem(case.trusted))
    (work / "o-leaf.pem").write_bytes(case.leaf.pem)
    try:
        ipaddress.ip_address(case.hostname)
        name = ["-verify_ip", case.hostname]
    except ValueError:
        name = ["-verify_hostname", case.hostname]
    cmd = ["openssl", "verify", "-purpose", "sslserver", *name, "-attime", str(int(AT.timestamp())),
           "-CAfile", str(work / "o-ca.pem")]
    if case.chain:
        (work / "o-chain.pem").write_bytes(_pem(case.chain))
        cmd += ["-untrusted", str(work / "o-chain.pem")]
    r = subprocess.run([*cmd, str(work / "o-leaf.pem")], capture_output=True, text=True, timeout=30)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    mailroot = tmp_path_factory.mktemp("verdicts") / "MailRoot"
    sandbox_copy(mailroot)
    results = {}
    for i, case in enumerate(CASES):
        if case.check is not None:
            case.check(case.leaf)
        work = tmp_path_factory.mktemp(f"case{i}")
        ok, said = _openssl(case, work)
        argv = ["install", "--dry-run", "--json", "--lang", "en", "--mailroot", str(mailroot),
                "--hostname", case.hostname, *_write_inputs(case, work)]
        out, err = io.StringIO(), io.StringIO()
        with clock.frozen(AT):
            code = main(argv, stdout=out, stderr=err)
        doc = json.loads(out.getvalue())  # exactly one JSON document, whatever happened
        results[case.name] = Outcome(ok, said, code, doc, err.getvalue())
    return results


def test_corpus_is_large_and_varied():
    assert len(CASES) >= 60
    assert len({c.category for c in CASES}) >= 15
    assert len(BY_NAME) == len(CASES), "case names must be unique"
    for case in CASES:
        if case.differs:
            assert case.differs in vc.STRICTER or case.differs in vc.INCLUSIVE, case.name
    docs = Path(__file__).parent.parent.joinpath("docs", "verdicts.md").read_text(encoding="utf-8")
    for rule in (*vc.STRICTER, *vc.INCLUSIVE):
        assert f"`{rule}`" in docs, f"docs/verdicts.md does not document {rule}"


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_same_verdict_as_openssl(name, outcomes):
    case, o = BY_NAME[name], outcomes[name]
    assert o.code in (0, 1), (o.code, o.err)
    assert "Unexpected internal error" not in o.err
    if case.differs in vc.STRICTER:
        assert o.openssl_ok and not o.xmailnb_ok, (o.openssl_said, o.doc)
    elif case.differs in vc.INCLUSIVE:
        assert o.xmailnb_ok and not o.openssl_ok, (o.openssl_said, o.doc)
    else:
        assert o.xmailnb_ok == o.openssl_ok, (o.openssl_said, o.doc, o.err)
    if not o.xmailnb_ok:
        error = o.doc["error"]
        assert error["field"] in ("cert", "chain", "ca", "key", "hostname"), error
        text = error["message"] + error["fix"]
        assert error["fix"] and not any(word in text for word in LIBRARY_WORDS), error
    else:
        assert o.doc["dry_run"] is True and o.doc["plan"]["leaf"]["sha256"]
    if case.warns:
        assert o.xmailnb_ok, o.doc
        from xmailnb.i18n import catalog

        opening = catalog("en")[case.warns].split("{")[0]
        assert any(opening in w for w in o.doc["plan"]["warnings"]), o.doc["plan"]["warnings"]


def test_agreement_figure(outcomes):
    agree = sum(1 for c in CASES if outcomes[c.name].xmailnb_ok == outcomes[c.name].openssl_ok)
    installed_but_refused = [c.name for c in CASES if outcomes[c.name].xmailnb_ok
                             and not outcomes[c.name].openssl_ok and c.differs not in vc.INCLUSIVE]
    assert installed_but_refused == []
    print(f"\nagreement with openssl verify: {agree}/{len(CASES)} = {agree / len(CASES):.1%}")
    assert agree / len(CASES) >= 0.90, f"{agree}/{len(CASES)}"


def test_left_out_certificates_are_listed(outcomes):
    for name in ("cross-expired-in-bundle", "extra-unrelated-ca", "cross-valid-in-bundle"):
        plan = outcomes[name].doc["plan"]
        assert len(plan["left_out"]) == 1, plan
        assert any(w.startswith("Left out: ") for w in plan["warnings"]), plan["warnings"]
    # The expired cross-sign is said to be expired, and the good leaf installed.
    plan = outcomes["cross-expired-in-bundle"].doc["plan"]
    assert any("expired" in w for w in plan["warnings"] if w.startswith("Left out"))


def test_refusals_name_the_reason(outcomes):
    expect = {
        "eku-client-only-leaf": "not issued for use by servers",
        "nc-excluded-match": "name constraints exclude",
        "nc-permitted-mismatch": "may issue certificates only for",
        "pathlen-inter-0-below": "at most 0 intermediate",
        "critical-unknown-inter": "critical extension clients do not know",
        "validity-root-expired": "expired",
        "validity-inter-not-yet": "not valid yet",
        "wildcard-public-suffix": "too broad",
        "kid-root-aki-mismatch": "authorityKeyIdentifier",
        "weak-rsa-1024-inter": "RSA 1024",
        "weak-explicit-curve-inter": "explicit curve",
        "host-no-san": "no subjectAltName",
        "v1-leaf": "version 3",
        "serial-21-octets": "serial number",
        "ca-leaf-is-ca": "is a CA certificate",
        "missing-intermediate": "does not lead to the CA you gave",
        "malformed-duplicate-san": "twice",
        "malformed-san": "subjectAltName",
    }
    for name, words in expect.items():
        error = outcomes[name].doc["error"]
        assert words in error["message"], (name, error)
    # A defect that is not the name is never told as a host-name mismatch.
    for name in ("v1-leaf", "host-no-san", "serial-21-octets", "critical-unknown-leaf"):
        assert "does not cover the mail host name" not in outcomes[name].doc["error"]["message"]

"""Bad-input corpus through the command line.

Each case is generated at test time and asserts the exact outcome: accepted
(with the right files written) or refused with the message that names the
problem (its catalog key), no traceback, and every file of the MailRoot
byte-identical.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import pki
from helpers import CSR_ARGS, run, sandbox_copy, tree


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """Every certificate and key the corpus needs, made once."""
    now = pki.now()
    m: dict[str, object] = {}
    m["h"] = pki.hierarchy(sans=["mail.example.jp", "example.jp"])
    m["other"] = pki.hierarchy()
    h = m["h"]
    m["expired"] = h.intermediate.sign("mail.example.jp", not_before=now - dt.timedelta(days=200), days=100)
    m["future"] = h.intermediate.sign("mail.example.jp", not_before=now + dt.timedelta(days=5))
    m["nosan"] = h.intermediate.sign("mail.example.jp", sans=[])
    m["wild"] = h.intermediate.sign("*.example.jp")
    m["idn"] = h.intermediate.sign("xn--4dkua4c.example.jp")
    m["weak"] = h.intermediate.sign("mail.example.jp", key_size=1024)
    m["ec"] = h.intermediate.sign("mail.example.jp", key_kind="ec")
    m["ed"] = h.intermediate.sign("mail.example.jp", key=ed25519.Ed25519PrivateKey.generate())
    old_inter = h.root.sign("Old Intermediate", ca=True, not_before=now - dt.timedelta(days=400), days=300)
    m["old_inter"] = old_inter
    m["under_old"] = old_inter.sign("mail.example.jp", not_before=now - dt.timedelta(days=390), days=800)
    work = tmp_path_factory.mktemp("openssl")
    m["sha1"] = _sha1_leaf(h, work)
    m["empty_p7"] = _empty_p7(work)
    return m


def _sha1_leaf(h: pki.Hierarchy, work: Path) -> tuple[bytes, bytes] | None:
    """A SHA-1 signed leaf (cryptography refuses to make one; openssl can)."""
    leaf_key = pki.new_key()
    (work / "ca.key").write_bytes(h.intermediate.key_pem())
    (work / "ca.crt").write_bytes(h.intermediate.pem)
    (work / "leaf.key").write_bytes(pki.Issued(cert=None, key=leaf_key).key_pem())  # type: ignore[arg-type]
    (work / "ext").write_text("subjectAltName=DNS:mail.example.jp\n")
    cmds = [
        ["openssl", "req", "-new", "-key", "leaf.key", "-subj", "/CN=mail.example.jp", "-out", "leaf.csr"],
        ["openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-sha1", "-days", "30", "-extfile", "ext", "-out", "leaf.crt"],
    ]
    try:
        for cmd in cmds:
            subprocess.run(cmd, cwd=work, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return (work / "leaf.crt").read_bytes(), (work / "leaf.key").read_bytes()


def _empty_p7(work: Path) -> bytes | None:
    try:
        out = subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-outform", "DER"], cwd=work, check=True,
                             capture_output=True, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout


@dataclass
class Case:
    name: str
    build: Callable[[dict, Path], list[str]]  # writes files, returns argv
    expect: str  # "ok" or the catalog key of the refusal
    check: Callable[[dict, Path], None] | None = None
    needs: list[str] = field(default_factory=list)


def _w(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


def _install(cert: Callable[[dict], bytes], *, chain: Callable[[dict], bytes] | None = None,
             key: Callable[[dict], bytes] | None = None, passphrase: bytes | None = None,
             extra: tuple[str, ...] = ()):
    def build(m: dict, tmp: Path) -> list[str]:
        argv = ["install", "--cert", _w(tmp, "cert.in", cert(m))]
        if chain is not None:
            argv += ["--chain", _w(tmp, "chain.in", chain(m))]
        if key is not None:
            argv += ["--key", _w(tmp, "key.in", key(m))]
        if passphrase is not None:
            argv += ["--passphrase-file", _w(tmp, "pass.txt", passphrase + b"\n")]
        return argv + list(extra)
    return build


def _server_cert_is(expected: Callable[[dict], bytes]):
    def check(m: dict, mailroot: Path) -> None:
        assert (mailroot / "server.cert").read_bytes() == expected(m)
        key = serialization.load_pem_private_key((mailroot / "server.key").read_bytes(), None)
        from cryptography import x509

        from xmailnb.pki.keys import public_key_matches
        leaf = x509.load_pem_x509_certificates((mailroot / "server.cert").read_bytes())[0]
        assert public_key_matches(key, leaf)
    return check


H = lambda m: m["h"]  # noqa: E731
LEAF = lambda m: m["h"].leaf.pem  # noqa: E731
INTER = lambda m: m["h"].intermediate.pem  # noqa: E731
KEY = lambda m: m["h"].leaf.key_pem()  # noqa: E731
GOOD = lambda m: m["h"].leaf.pem + m["h"].intermediate.pem  # noqa: E731


def _corrupt(pem: bytes) -> bytes:
    lines = pem.splitlines(keepends=True)
    lines[3] = b"!!!!" + lines[3][4:]
    return b"".join(lines)


def _truncated(pem: bytes) -> bytes:
    return pem[: len(pem) // 2]


INSTALL_CASES = [
    Case("empty file", _install(lambda m: b""), "certfiles.empty"),
    Case("huge file", _install(lambda m: b"A" * (3 * 1024 * 1024)), "certfiles.too_large"),
    Case("binary garbage", _install(lambda m: os.urandom(2048)), "certfiles.unrecognised"),
    Case("random text", _install(lambda m: b"Dear customer, your certificate is attached.\n"), "certfiles.unrecognised"),
    Case("truncated PEM", _install(lambda m: _truncated(m["h"].leaf.pem)), "certfiles.pem.truncated"),
    Case("corrupted PEM", _install(lambda m: _corrupt(m["h"].leaf.pem)), "certfiles.pem.corrupt"),
    Case("truncated DER", _install(lambda m: m["h"].leaf.der[:300]), "certfiles.unrecognised"),
    Case("PEM with two keys as key", _install(GOOD, key=lambda m: KEY(m) + m["other"].leaf.key_pem()),
         "certfiles.key.several"),
    Case("CSR given as certificate", None, "certfiles.cert.is_csr"),  # filled below
    Case("key given as certificate", _install(KEY), "certfiles.cert.is_key"),
    Case("certificate given as key", _install(GOOD, key=LEAF), "certfiles.key.is_cert"),
    Case("CA certificate given as leaf", _install(INTER, key=KEY), "chain.leaf.is_ca"),
    Case("root given as leaf", _install(lambda m: m["h"].root.pem), "chain.leaf.is_ca"),
    Case("leaf given as intermediate", _install(LEAF, chain=lambda m: m["other"].leaf.pem, key=KEY),
         "actions.chain.leaf_given"),
    Case("reversed chain in one file", _install(lambda m: INTER(m) + LEAF(m), key=KEY), "ok",
         _server_cert_is(GOOD)),
    Case("root, leaf, intermediate shuffled", _install(lambda m: m["h"].root.pem + LEAF(m) + INTER(m), key=KEY),
         "ok", _server_cert_is(GOOD)),
    Case("incomplete chain", _install(LEAF, key=KEY), "actions.chain.incomplete"),
    Case("incomplete chain allowed", _install(LEAF, key=KEY, extra=("--allow-incomplete-chain",)), "ok",
         _server_cert_is(LEAF)),
    Case("chain for a different leaf", _install(LEAF, chain=lambda m: m["other"].intermediate.pem, key=KEY),
         "chain.wrong_issuer"),
    Case("expired leaf", _install(lambda m: m["expired"].pem + INTER(m), key=lambda m: m["expired"].key_pem()),
         "actions.cert.expired"),
    Case("not-yet-valid leaf", _install(lambda m: m["future"].pem + INTER(m), key=lambda m: m["future"].key_pem()),
         "actions.cert.not_yet_valid"),
    Case("expired intermediate", _install(lambda m: m["under_old"].pem + m["old_inter"].pem,
                                          key=lambda m: m["under_old"].key_pem()), "actions.cert.expired"),
    # Not "does not cover the host name; it covers: <the same name>" (issue #11).
    Case("certificate without SANs", _install(lambda m: m["nosan"].pem + INTER(m), key=lambda m: m["nosan"].key_pem()),
         "actions.cert.no_san"),
    Case("wildcard certificate", _install(lambda m: m["wild"].pem + INTER(m), key=lambda m: m["wild"].key_pem()),
         "ok"),
    Case("IDN host name", _install(lambda m: m["idn"].pem + INTER(m), key=lambda m: m["idn"].key_pem(),
                                   extra=("--hostname", "メール.example.jp")), "ok"),
    Case("host name not covered", _install(GOOD, key=KEY, extra=("--hostname", "pop.example.com")),
         "actions.hostname.not_covered"),
    Case("invalid --hostname", _install(GOOD, key=KEY, extra=("--hostname", "bad host")), "csr.host.space"),
    Case("mismatched key", _install(GOOD, key=lambda m: m["other"].leaf.key_pem()), "actions.key.mismatch"),
    Case("no key anywhere", _install(GOOD), "actions.key.none"),
    Case("encrypted traditional key, no passphrase",
         _install(GOOD, key=lambda m: m["h"].leaf.key_pem(password=b"pw")), "certfiles.key.passphrase_needed"),
    Case("encrypted traditional key, wrong passphrase",
         _install(GOOD, key=lambda m: m["h"].leaf.key_pem(password=b"pw"), passphrase=b"nope"),
         "certfiles.key.wrong_passphrase"),
    Case("encrypted traditional key, right passphrase",
         _install(GOOD, key=lambda m: m["h"].leaf.key_pem(password=b"pw"), passphrase=b"pw"), "ok",
         _server_cert_is(GOOD)),
    Case("encrypted PKCS#8 key, no passphrase",
         _install(GOOD, key=lambda m: m["h"].leaf.key_pem(traditional=False, password=b"pw")),
         "certfiles.key.passphrase_needed"),
    Case("encrypted PKCS#8 key, wrong passphrase",
         _install(GOOD, key=lambda m: m["h"].leaf.key_pem(traditional=False, password=b"pw"), passphrase=b"x"),
         "certfiles.key.wrong_passphrase"),
    Case("encrypted PKCS#8 key, right passphrase",
         _install(GOOD, key=lambda m: m["h"].leaf.key_pem(traditional=False, password=b"pw"), passphrase=b"pw"),
         "ok", _server_cert_is(GOOD)),
    Case("PKCS#12 with wrong password", _install(lambda m: m["h"].p12(b"secret"), passphrase=b"wrong"),
         "certfiles.p12.wrong_password"),
    Case("PKCS#12 without password given", _install(lambda m: m["h"].p12(b"secret")),
         "certfiles.p12.password_needed"),
    Case("PKCS#12 right password", _install(lambda m: m["h"].p12(b"secret"), passphrase=b"secret"), "ok",
         _server_cert_is(GOOD)),
    Case("PKCS#12 without key", _install(lambda m: m["h"].p12(None, with_key=False)), "actions.key.none"),
    Case("PKCS#12 unprotected", _install(lambda m: m["h"].p12(None)), "ok", _server_cert_is(GOOD)),
    Case("PKCS#7 with no certificates", _install(lambda m: m["empty_p7"]), "certfiles.p7.empty", needs=["empty_p7"]),
    Case("PKCS#7 PEM bundle", _install(lambda m: m["h"].p7b(), key=KEY), "ok", _server_cert_is(GOOD)),
    Case("PKCS#7 DER bundle", _install(lambda m: m["h"].p7b(der=True), key=KEY), "ok", _server_cert_is(GOOD)),
    Case("DER certificate and DER chain",
         _install(lambda m: m["h"].leaf.der, chain=lambda m: m["h"].intermediate.der, key=KEY), "ok",
         _server_cert_is(GOOD)),
    Case("DER key", _install(GOOD, key=lambda m: m["h"].leaf.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())), "ok"),
    Case("CRLF line endings", _install(lambda m: GOOD(m).replace(b"\n", b"\r\n"),
                                       key=lambda m: KEY(m).replace(b"\n", b"\r\n")), "ok", _server_cert_is(GOOD)),
    Case("UTF-8 BOM", _install(lambda m: b"\xef\xbb\xbf" + GOOD(m), key=KEY), "ok", _server_cert_is(GOOD)),
    Case("trailing junk", _install(lambda m: GOOD(m) + b"\x00\x01junk after the end\n", key=KEY), "ok",
         _server_cert_is(GOOD)),
    Case("text around blocks", _install(lambda m: b"Subject: your order\n\n" + LEAF(m) + b"\nand the chain:\n"
                                        + INTER(m) + b"\n-- \nThe CA team\n", key=KEY), "ok", _server_cert_is(GOOD)),
    Case("weak RSA 1024 leaf", _install(lambda m: m["weak"].pem + INTER(m), key=lambda m: m["weak"].key_pem()),
         "keys.weak.rsa"),
    Case("SHA-1 signed leaf", _install(lambda m: m["sha1"][0] + INTER(m), key=lambda m: m["sha1"][1]),
         "actions.cert.weak_signature", needs=["sha1"]),
    Case("EC leaf", _install(lambda m: m["ec"].pem + INTER(m), key=lambda m: m["ec"].key_pem()), "ok"),
    Case("Ed25519 leaf", _install(lambda m: m["ed"].pem + INTER(m), key=lambda m: m["ed"].key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
        "keys.unsupported"),
    Case("missing certificate file", lambda m, tmp: ["install", "--cert", str(tmp / "nope.pem")],
         "actions.unreadable"),
    Case("directory as certificate", lambda m, tmp: ["install", "--cert", str(tmp)], "actions.not_regular"),
    Case("missing passphrase file", lambda m, tmp: ["install", "--cert", _w(tmp, "c", GOOD(m)),
                                                    "--passphrase-file", str(tmp / "nope")], "actions.unreadable"),
    Case("CA file that is not a CA", _install(GOOD, key=KEY, extra=()), "ok"),
]


def _csr_case_build(m: dict, tmp: Path) -> list[str]:
    # A CSR made by the product, then handed to install as the certificate.
    sandbox = tmp / "csr-maker"
    sandbox_copy(sandbox)
    assert run("csr", "--mailroot", str(sandbox), *CSR_ARGS).code == 0
    return ["install", "--cert", str(sandbox / "sslconf" / "server.csr")]


INSTALL_CASES[8] = Case("CSR given as certificate", _csr_case_build, "certfiles.cert.is_csr")
INSTALL_CASES[-1] = Case("CA file that is not a CA", lambda m, tmp: [
    "install", "--cert", _w(tmp, "c", GOOD(m)), "--key", _w(tmp, "k", KEY(m)), "--ca", _w(tmp, "ca", LEAF(m))],
    "actions.ca.not_ca")


def _csr(**changes: str) -> Callable[[dict, Path], list[str]]:
    def build(m: dict, tmp: Path) -> list[str]:
        args = list(CSR_ARGS)
        for opt, value in changes.items():
            flag = "--" + opt.replace("_", "-")
            if flag in args:
                i = args.index(flag)
                del args[i:i + 2]
            args.append(f"{flag}={value}")  # '=' keeps values like '-x' from looking like options
        return ["csr", *args]
    return build


CSR_CASES = [
    Case("country XX", _csr(country="XX"), "csr.country.unknown"),
    Case("country JPN", _csr(country="JPN"), "csr.country.suggest"),
    Case("country UK", _csr(country="UK"), "csr.country.uk"),
    Case("country empty", _csr(country=""), "csr.text.required"),
    Case("country one letter", _csr(country="J"), "csr.country.length"),
    Case("lower-case country accepted", _csr(country="jp"), "ok"),
    Case("state with control character", _csr(state="Tokyo\x1b[31m"), "csr.text.control"),
    Case("locality with newline", _csr(locality="Shibuya\nku"), "csr.text.control"),
    Case("Japanese organisation accepted", _csr(org="株式会社エグザンプル"), "ok"),
    Case("organisation overlong", _csr(org="O" * 65), "csr.text.too_long"),
    Case("unit overlong", _csr(unit="U" * 65), "csr.text.too_long"),
    Case("state overlong", _csr(state="S" * 129), "csr.text.too_long"),
    Case("host name with underscore", _csr(cn="mail_server.example.jp"), "csr.host.bad_chars"),
    Case("host name is an IP address", _csr(cn="192.0.2.10"), "csr.host.ip"),
    Case("host name without a dot", _csr(cn="mail"), "csr.host.not_fqdn"),
    Case("host name label too long", _csr(cn="a" * 64 + ".example.jp"), "csr.host.label_too_long"),
    Case("host name with leading hyphen", _csr(cn="-mail.example.jp"), "csr.host.hyphen"),
    Case("common name over 64 characters", _csr(cn="a" * 40 + "." + "b" * 40 + ".jp"), "csr.cn.too_long"),
    Case("IDN host name accepted", _csr(cn="メール.例え.jp"), "ok"),
    Case("one bad alias", _csr(aliases="example.jp bad_alias.example.jp"), "csr.host.bad_chars"),
    Case("several bad aliases", _csr(aliases="a_b.example.jp c d_e.jp"), "csr.aliases.invalid"),
    Case("invalid e-mail", _csr(email="admin@@example.jp"), "csr.email.invalid"),
    Case("key size 1024", _csr(key_size="1024"), "keys.size.weak"),
    Case("key size 8192", _csr(key_size="8192"), "keys.size.unsupported"),
    Case("key size not a number", _csr(key_size="big"), "keys.size.invalid"),
    Case("key type dsa", _csr(key_type="dsa"), "keys.type.invalid"),
    Case("unknown curve", _csr(key_type="ec", curve="P-192"), "keys.curve.invalid"),
    Case("memo overlong", _csr(memo="m" * 1001), "csr.memo.too_long"),
]

SETTINGS_CASES = [
    Case("unknown variable", lambda m, t: ["settings", "--set", "SSLFoo=1"], "servertab.name.unknown"),
    Case("wrong case", lambda m, t: ["settings", "--set", "sslusecertsfile=1"], "servertab.name.case"),
    Case("flag out of range", lambda m, t: ["settings", "--set", "SSLWantVerify=2"], "servertab.value.flag"),
    Case("flag as word", lambda m, t: ["settings", "--set", "EnableSMTP-TLS=yes"], "servertab.value.flag"),
    Case("negative integer", lambda m, t: ["settings", "--set", "SSLMaxCertsDepth=-3"], "servertab.value.int"),
    Case("tab inside a value", lambda m, t: ["settings", "--set", "SmtpConfig=mail-auth\tWantTLS"],
         "servertab.value.chars"),
]

ALL = INSTALL_CASES + CSR_CASES + SETTINGS_CASES


def test_corpus_is_large_enough():
    assert len(ALL) >= 60


def prepare(case: Case, material: dict, tmp_path: Path) -> list[str]:
    """Write the case's input files and return its command line (skips when
    openssl could not make a sample the case needs)."""
    for need in case.needs:
        if material.get(need) is None:
            pytest.skip(f"openssl could not make the {need} sample")
    work = tmp_path / "in"
    work.mkdir()
    return case.build(material, work)


@pytest.fixture
def mailroot(tmp_path) -> Path:
    target = tmp_path / "MailRoot"
    sandbox_copy(target)
    return target


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_bad_input(case: Case, material, mailroot, tmp_path):
    argv = prepare(case, material, tmp_path)
    before = tree(mailroot)
    for lang in ("en", "ja"):
        r = run(*argv, "--mailroot", str(mailroot), "--json", "--lang", lang)
        if case.expect == "ok":
            assert r.code == 0, r.err
            break
        assert r.code == 1, (r.code, r.err)
        error = r.json["error"]
        assert error["key"] == case.expect, error
        assert error["message"] and error["fix"], error
        assert "Traceback" not in r.err and r.err.strip()
        assert tree(mailroot) == before
    if case.check is not None:
        case.check(material, mailroot)

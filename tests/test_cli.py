"""The `xmailnb` command line, end to end on sandbox and copied MailRoots."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509

import pki
from helpers import CSR_ARGS, run, sandbox_copy, sign_csr_file, tree
from xmailnb.checks.diagnose import CHECK_IDS
from xmailnb.mailroot.resolve import resolve


@pytest.fixture
def mailroot(tmp_path) -> Path:
    """A live-like MailRoot: the stock sandbox copied elsewhere, without the
    marker that makes it a practice sandbox."""
    sandbox = resolve(None).path
    target = tmp_path / "MailRoot"
    shutil.copytree(sandbox, target)
    (target / "sslconf" / "xmailnb-sandbox.txt").unlink()
    return target


@pytest.fixture(scope="module")
def ca():
    r = pki.root()
    return r, r.sign("xmailnb Test Intermediate CA", ca=True)


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def csr_then_sign(mailroot: Path, ca, *extra: str, **sign_kw):
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS, *extra)
    assert r.code == 0, r.err
    root, inter = ca
    leaf = sign_csr_file(inter, mailroot / "sslconf" / "server.csr", **sign_kw)
    return leaf


# -- MailRoot choice -----------------------------------------------------------

def test_diagnose_on_fresh_sandbox(tmp_path):
    r = run("diagnose", "--json", "--lang", "en")
    assert r.code == 1  # no key, no certificate yet
    doc = r.json
    assert [f["check"] for f in doc["findings"]] == list(CHECK_IDS)
    by = {f["check"]: f for f in doc["findings"]}
    assert by["key.present"]["status"] == "error" and by["cert.present"]["status"] == "error"
    assert by["cert.pair"]["status"] == "info"
    assert doc["sandbox"] is True
    assert "sandbox" in r.err and doc["mailroot"] in r.err


def test_mail_root_environment_variable(mailroot, monkeypatch):
    monkeypatch.setenv("MAIL_ROOT", str(mailroot))
    r = run("diagnose", "--json")
    assert r.json["mailroot"] == str(mailroot) and r.json["sandbox"] is False
    assert "sandbox" not in r.err


def test_copy_of_the_sandbox_is_still_a_practice_mailroot(tmp_path):
    copy = tmp_path / "copy"
    sandbox_copy(copy)
    r = run("diagnose", "--mailroot", str(copy), "--json")
    assert r.json["sandbox"] is True and "sandbox" in r.err


def test_folder_without_server_tab_is_refused(tmp_path):
    r = run("diagnose", "--mailroot", str(tmp_path), "--lang", "en")
    assert r.code == 2 and "server.tab" in r.err
    assert list(tmp_path.iterdir()) == []
    r = run("diagnose", "--mailroot", str(tmp_path / "nope"), "--lang", "ja")
    assert r.code == 2 and "見つかりません" in r.err


@pytest.mark.parametrize("argv", [
    ["diagnose", "--bogus"],
    ["install"],
    ["csr", "--country", "JP"],
    ["frobnicate"],
    ["diagnose", "--lang", "fr"],
])
def test_usage_errors_exit_2_without_traceback(argv):
    r = run(*argv)
    assert r.code == 2 and r.err.strip()


def test_usage_error_in_japanese():
    r = run("diagnose", "--bogus", "--lang", "ja")
    assert r.code == 2 and "指定に誤り" in r.err


def test_python_dash_m_and_console_script(mailroot):
    env = dict(os.environ, LANG="C")
    p = subprocess.run([sys.executable, "-m", "xmailnb", "diagnose", "--mailroot", str(mailroot), "--json"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 1 and p.stdout.lstrip().startswith("{")
    script = Path(sys.executable).with_name("xmailnb")
    p = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "diagnose" in p.stdout


# -- csr -----------------------------------------------------------------------

def test_csr_writes_key_and_csr(mailroot):
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS, "--aliases", "example.jp smtp.example.jp",
            "--memo", "first try", "--json")
    assert r.code == 0, r.err
    key_path = mailroot / "sslconf" / "server.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    csr = x509.load_pem_x509_csr((mailroot / "sslconf" / "server.csr").read_bytes())
    assert csr.is_signature_valid and csr.signature_hash_algorithm.name == "sha256"
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["mail.example.jp", "example.jp", "smtp.example.jp"]
    doc = r.json
    assert doc["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert doc["sans"][0] == "mail.example.jp" and len(doc["sha256"].split(":")) == 32
    assert "PRIVATE KEY" not in r.out and "PRIVATE KEY" not in r.err


def test_csr_text_output_prints_csr_and_fingerprint(mailroot):
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS, "--lang", "ja")
    assert r.code == 0
    assert "-----BEGIN CERTIFICATE REQUEST-----" in r.out and "SHA-256" in r.out
    assert "PRIVATE KEY" not in r.out


def test_csr_idn_becomes_punycode(mailroot):
    args = [a if a != "mail.example.jp" else "メール.例え.jp" for a in CSR_ARGS]
    r = run("csr", "--mailroot", str(mailroot), *args, "--json")
    assert r.code == 0, r.err
    assert r.json["sans"] == ["xn--4dkua4c.xn--r8jz45g.jp"]


@pytest.mark.parametrize("change", [
    ("--country", "XX"), ("--country", "JPN"), ("--cn", "not a host"), ("--cn", "192.0.2.1"),
    ("--email", "not-an-address"), ("--state", "Tokyo\x07"),
])
def test_csr_refuses_bad_fields_and_writes_nothing(mailroot, change):
    args = list(CSR_ARGS)
    if change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args += list(change)
    before = tree(mailroot)
    r = run("csr", "--mailroot", str(mailroot), *args, "--lang", "en")
    assert r.code == 1 and r.err.strip()
    assert tree(mailroot) == before


@pytest.mark.parametrize("size", ["1024", "8192", "abc"])
def test_csr_refuses_key_sizes(mailroot, size):
    before = tree(mailroot)
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS, "--key-size", size)
    assert r.code == 1 and "2048" in r.err
    assert tree(mailroot) == before


def test_csr_ec_key(mailroot):
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS, "--key-type", "ec", "--curve", "P-384", "--json")
    assert r.code == 0 and r.json["key"] == "EC P-384"
    assert (mailroot / "sslconf" / "server.key").read_bytes().startswith(b"-----BEGIN EC PRIVATE KEY-----")


def test_second_csr_archives_first_and_rollback_restores(mailroot):
    assert run("csr", "--mailroot", str(mailroot), *CSR_ARGS).code == 0
    first = (mailroot / "sslconf" / "server.key").read_bytes()
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS, "--lang", "en")
    assert r.code == 0 and "archived" in r.err
    assert (mailroot / "sslconf" / "server.key").read_bytes() != first
    hist = run("history", "--mailroot", str(mailroot), "--json").json
    assert [h["action"] for h in hist] == ["csr", "csr"]
    assert set(hist[0]["files"]) == {"sslconf/server.key", "sslconf/server.csr", "sslconf/server.csr.json"}
    assert run("rollback", "--mailroot", str(mailroot)).code == 0
    assert (mailroot / "sslconf" / "server.key").read_bytes() == first


# -- install -------------------------------------------------------------------

def test_full_flow_csr_sign_install(mailroot, ca, tmp_path):
    root, inter = ca
    leaf = csr_then_sign(mailroot, ca)
    r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "server.crt", leaf.pem),
            "--chain", write(tmp_path / "inter.crt", inter.pem), "--json", "--lang", "en")
    assert r.code == 0, r.err
    assert (mailroot / "server.cert").read_bytes() == leaf.pem + inter.pem
    assert (mailroot / "server.key").read_bytes() == (mailroot / "sslconf" / "server.key").read_bytes()
    assert stat.S_IMODE((mailroot / "server.key").stat().st_mode) == 0o600
    by = {f["check"]: f for f in r.json["diagnosis"]["findings"]}
    assert by["cert.pair"]["status"] == "ok"
    assert by["cert.chain"]["status"] == "ok"
    assert by["cert.hostname"]["status"] == "ok"
    assert by["cert.trust"]["status"] == "warn"  # a private test root
    assert by["csr.pending"]["status"] == "info"
    assert "PRIVATE KEY" not in r.out
    # The root, given as a CA for certs.pem, turns trust into "known private CA".
    r = run("install", "--mailroot", str(mailroot), "--cert", str(tmp_path / "server.crt"),
            "--chain", str(tmp_path / "inter.crt"), "--ca", write(tmp_path / "root.crt", root.pem), "--json")
    assert r.code == 0
    assert (mailroot / "certs.pem").read_bytes() == root.pem
    by = {f["check"]: f for f in r.json["diagnosis"]["findings"]}
    assert by["cert.trust"]["status"] == "info"


def test_install_bundle_in_any_order_with_root(mailroot, ca, tmp_path):
    root, inter = ca
    leaf = csr_then_sign(mailroot, ca)
    bundle = root.pem + b"some text from the CA's mail\r\n" + leaf.pem + inter.pem
    r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "bundle.pem", bundle))
    assert r.code == 0, r.err
    assert (mailroot / "server.cert").read_bytes() == leaf.pem + inter.pem  # root left out


def test_install_pkcs7_and_der(mailroot, ca, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    root, inter = ca
    leaf = csr_then_sign(mailroot, ca)
    p7 = pkcs7.serialize_certificates([inter.cert, leaf.cert], serialization.Encoding.DER)
    r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "c.p7b", p7))
    assert r.code == 0, r.err
    assert (mailroot / "server.cert").read_bytes() == leaf.pem + inter.pem
    r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "leaf.der", leaf.der),
            "--chain", write(tmp_path / "inter.der", inter.der))
    assert r.code == 0 and "nothing to do" in r.err.lower()


def test_install_pkcs12_with_passphrase_file(mailroot, tmp_path):
    h = pki.hierarchy()
    pf = write(tmp_path / "pass.txt", b"secret\r\nsecond line ignored\n")
    r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "s.pfx", h.p12(b"secret")),
            "--passphrase-file", pf)
    assert r.code == 0, r.err
    assert (mailroot / "server.cert").read_bytes() == h.leaf.pem + h.intermediate.pem
    assert (mailroot / "server.key").read_bytes() == h.leaf.key_pem()
    wrong = write(tmp_path / "wrong.txt", b"nope\n")
    before = tree(mailroot)
    r = run("install", "--mailroot", str(mailroot), "--cert", str(tmp_path / "s.pfx"), "--passphrase-file", wrong)
    assert r.code == 1 and tree(mailroot) == before


def test_install_encrypted_key_is_installed_decrypted(mailroot, tmp_path):
    h = pki.hierarchy()
    key = write(tmp_path / "enc.key", h.leaf.key_pem(traditional=False, password=b"pw"))
    cert = write(tmp_path / "c.pem", h.chain_pem)
    before = tree(mailroot)
    r = run("install", "--mailroot", str(mailroot), "--cert", cert, "--key", key, "--lang", "en")
    assert r.code == 1 and "passphrase" in r.err.lower() and tree(mailroot) == before
    r = run("install", "--mailroot", str(mailroot), "--cert", cert, "--key", key,
            "--passphrase-file", write(tmp_path / "p", b"pw\n"))
    assert r.code == 0, r.err
    assert (mailroot / "server.key").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_install_dry_run_writes_nothing(mailroot, tmp_path):
    h = pki.hierarchy()
    before = tree(mailroot)
    r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "c.pem", h.chain_pem),
            "--key", write(tmp_path / "k.pem", h.leaf.key_pem()), "--dry-run", "--json")
    assert r.code == 0 and r.json["dry_run"] is True
    assert r.json["plan"]["leaf"]["sans"] == ["mail.example.jp"]
    assert len(r.json["plan"]["intermediates"]) == 1
    assert tree(mailroot) == before


def _refused(mailroot, *argv):
    before = tree(mailroot)
    r = run("install", "--mailroot", str(mailroot), *argv, "--lang", "en")
    assert r.code == 1, (r.code, r.err)
    assert r.err.strip() and tree(mailroot) == before
    return r


def test_install_refusals(mailroot, ca, tmp_path):
    root, inter = ca
    h = pki.hierarchy()
    other = pki.hierarchy()
    k = write(tmp_path / "k.pem", h.leaf.key_pem())
    leaf = write(tmp_path / "leaf.pem", h.leaf.pem)
    chain = write(tmp_path / "inter.pem", h.intermediate.pem)
    # key that does not belong
    _refused(mailroot, "--cert", leaf, "--chain", chain, "--key", write(tmp_path / "o.key", other.leaf.key_pem()))
    # CA certificate given as server certificate
    _refused(mailroot, "--cert", chain, "--key", k)
    # leaf given as intermediate
    _refused(mailroot, "--cert", leaf, "--chain", write(tmp_path / "l2.pem", other.leaf.pem), "--key", k)
    # chain for a different leaf
    _refused(mailroot, "--cert", leaf, "--chain", write(tmp_path / "oi.pem", other.intermediate.pem), "--key", k)
    # missing intermediate
    r = _refused(mailroot, "--cert", leaf, "--key", k)
    assert "--allow-incomplete-chain" in r.err
    # CSR given as certificate
    run("csr", "--mailroot", str(mailroot), *CSR_ARGS)
    r = _refused(mailroot, "--cert", str(mailroot / "sslconf" / "server.csr"))
    assert "signing request" in r.err.lower()
    # garbage and empty and huge
    _refused(mailroot, "--cert", write(tmp_path / "g.bin", os.urandom(700)))
    _refused(mailroot, "--cert", write(tmp_path / "e.pem", b""))
    _refused(mailroot, "--cert", write(tmp_path / "big.pem", b"A" * (5 * 1024 * 1024)))
    # missing file
    _refused(mailroot, "--cert", str(tmp_path / "does-not-exist.pem"))


def test_install_incomplete_allowed_with_flag(mailroot, tmp_path):
    h = pki.hierarchy()
    r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "l.pem", h.leaf.pem),
            "--key", write(tmp_path / "k.pem", h.leaf.key_pem()), "--allow-incomplete-chain", "--json")
    assert r.code == 0, r.err
    by = {f["check"]: f for f in r.json["diagnosis"]["findings"]}
    assert by["cert.chain"]["status"] == "warn"


def test_install_refuses_expired_and_wrong_host(mailroot, tmp_path):
    past = pki.now() - dt.timedelta(days=400)
    h = pki.hierarchy(not_before=past, days=30)
    _refused(mailroot, "--cert", write(tmp_path / "c.pem", h.chain_pem),
             "--key", write(tmp_path / "k.pem", h.leaf.key_pem()))
    h = pki.hierarchy(cn="www.example.com")
    r = _refused(mailroot, "--cert", write(tmp_path / "c2.pem", h.chain_pem),
                 "--key", write(tmp_path / "k2.pem", h.leaf.key_pem()))
    assert "mail.example.jp" in r.err  # from server.tab's SmtpServerDomain
    # the right host name on the command line makes it acceptable
    r = run("install", "--mailroot", str(mailroot), "--cert", str(tmp_path / "c2.pem"),
            "--key", str(tmp_path / "k2.pem"), "--hostname", "www.example.com")
    assert r.code == 0, r.err


def test_install_then_rollback_twice(mailroot, tmp_path):
    h1, h2 = pki.hierarchy(), pki.hierarchy()
    for i, h in enumerate((h1, h2)):
        assert run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / f"c{i}", h.chain_pem),
                   "--key", write(tmp_path / f"k{i}", h.leaf.key_pem())).code == 0
    assert (mailroot / "server.cert").read_bytes() == h2.chain_pem
    assert run("rollback", "--mailroot", str(mailroot)).code == 0
    assert (mailroot / "server.cert").read_bytes() == h1.chain_pem
    assert run("rollback", "--mailroot", str(mailroot)).code == 0
    assert (mailroot / "server.cert").read_bytes() == h2.chain_pem
    hist = run("history", "--mailroot", str(mailroot), "--json").json
    first_install = hist[-1]
    assert first_install["files"]["server.cert"] is None  # there was none before
    assert run("rollback", "--mailroot", str(mailroot), "--to", first_install["id"]).code == 0
    assert not (mailroot / "server.cert").exists() and not (mailroot / "server.key").exists()
    assert run("rollback", "--mailroot", str(mailroot), "--to", "nonsense").code == 1


def test_busy_mailroot_exit_3(mailroot, tmp_path, monkeypatch):
    # A writer waits a few seconds for the lock, then says "busy".
    monkeypatch.setenv("XMAILNB_LOCK_WAIT", "0.5")
    h = pki.hierarchy()
    script = textwrap.dedent(f"""
        import sys, pathlib
        from xmailnb.mailroot.layout import MailRoot
        from xmailnb.mailroot.store import Store
        with Store(MailRoot(pathlib.Path({str(mailroot)!r}))).lock():
            print('locked', flush=True)
            sys.stdin.read()  # held until the test ends
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        before = tree(mailroot)
        r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "c", h.chain_pem),
                "--key", write(tmp_path / "k", h.leaf.key_pem()), "--lang", "ja")
        assert r.code == 3 and "使用中" in r.err
        assert tree(mailroot) == before
    finally:
        proc.kill()
        proc.wait()


# -- settings ------------------------------------------------------------------

def test_settings_show_and_set(mailroot):
    r = run("settings", "--mailroot", str(mailroot), "--json")
    assert r.code == 0
    names = [s["name"] for s in r.json["settings"]]
    assert "EnableSMTP-TLS" in names and "SSLUseCertsFile" in names
    before = (mailroot / "server.tab").read_bytes().splitlines(keepends=True)
    r = run("settings", "--mailroot", str(mailroot), "--set", "SSLUseCertsFile=1", "--json")
    assert r.code == 0, r.err
    after = (mailroot / "server.tab").read_bytes().splitlines(keepends=True)
    changed = [line for line in after if line not in before]
    assert changed == [b'"SSLUseCertsFile"\t"1"\n']
    assert all(line in after for line in before)
    row = next(s for s in r.json["settings"] if s["name"] == "SSLUseCertsFile")
    assert row["value"] == "1"
    # XMail reads certs.pem only while it verifies certificates: not yet a finding...
    by = {f["check"]: f for f in run("diagnose", "--mailroot", str(mailroot), "--json").json["findings"]}
    assert by["ca.files"]["status"] == "ok"
    # ... but with verification on, the diagnosis notices that certs.pem is missing
    assert run("settings", "--mailroot", str(mailroot), "--set", "SSLWantVerify=1").code == 0
    by = {f["check"]: f for f in run("diagnose", "--mailroot", str(mailroot), "--json").json["findings"]}
    assert by["ca.files"]["status"] == "warn"


@pytest.mark.parametrize("assignment,code", [
    ("NoSuchVar=1", 1), ("SSLUseCertsFile=2", 1), ("SSLMaxCertsDepth=-1", 1), ("sslusecertsfile=1", 1),
    ("SSLUseCertsFile", 2),
])
def test_settings_refusals(mailroot, assignment, code):
    before = tree(mailroot)
    r = run("settings", "--mailroot", str(mailroot), "--set", assignment)
    assert r.code == code and r.err.strip()
    assert tree(mailroot) == before


def test_settings_keep_crlf(mailroot):
    tab = mailroot / "server.tab"
    tab.write_bytes(tab.read_bytes().replace(b"\n", b"\r\n"))
    original = tab.read_bytes()
    assert run("settings", "--mailroot", str(mailroot), "--set", "EnablePOP3-TLS=0").code == 0
    new = tab.read_bytes()
    assert b"\r\n" in new and b"\n" not in new.replace(b"\r\n", b"")
    assert len(new.splitlines()) in (len(original.splitlines()), len(original.splitlines()) + 1)


def test_json_refusal_is_one_json_document(mailroot, tmp_path):
    r = run("install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "g", b"garbage"), "--json")
    assert r.code == 1
    doc = r.json
    assert doc["error"]["exit_code"] == 1 and doc["error"]["field"] == "cert" and doc["error"]["message"]
    r = run("diagnose", "--mailroot", str(tmp_path / "missing"), "--json")
    assert r.code == 2 and r.json["error"]["exit_code"] == 2


def test_change_settings_can_remove_a_setting(mailroot):
    from xmailnb.errors import InputError
    from xmailnb.flows import actions
    from xmailnb.mailroot.layout import MailRoot
    from xmailnb.mailroot.servertab import ServerTab

    mr = MailRoot(mailroot)
    actions.change_settings(mr, {"SSLUseCertsFile": "1"})
    before = (mailroot / "server.tab").read_bytes()
    actions.change_settings(mr, {"SSLUseCertsFile": None})
    after = (mailroot / "server.tab").read_bytes()
    assert ServerTab.read(mailroot / "server.tab").get("SSLUseCertsFile") is None
    assert after.replace(b'#"SSLUseCertsFile"\t"1"', b'"SSLUseCertsFile"\t"1"') == before
    with pytest.raises(InputError) as err:
        actions.change_settings(mr, {"SSLFoo": None})
    assert err.value.msg.key == "servertab.name.unknown" and err.value.field == "SSLFoo"
    assert (mailroot / "server.tab").read_bytes() == after


def test_settings_unset_from_the_command_line(mailroot):
    assert run("settings", "--mailroot", str(mailroot), "--set", "SmtpNoTLSAuths=").code == 0
    r = run("settings", "--mailroot", str(mailroot), "--json")
    row = next(s for s in r.json["settings"] if s["name"] == "SmtpNoTLSAuths")
    assert row["value"] == ""
    assert run("settings", "--mailroot", str(mailroot), "--unset", "SmtpNoTLSAuths").code == 0
    r = run("settings", "--mailroot", str(mailroot), "--json")
    assert next(s for s in r.json["settings"] if s["name"] == "SmtpNoTLSAuths")["value"] is None
    assert run("settings", "--mailroot", str(mailroot), "--unset", "NoSuchThing").code == 1

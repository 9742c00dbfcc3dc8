"""Renewal with the same key: a new CSR from the installed server.key, so
that the later install replaces only server.cert (XMail reads the two files
separately on every connection)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import pki
from helpers import CSR_ARGS, run
from xmailnb.flows import actions, practice
from xmailnb.pki import keys
from xmailnb.errors import InputError
from xmailnb.mailroot.resolve import resolve
from xmailnb.mailroot.sandbox import create_sandbox
from xmailnb.mailroot.store import Store
from xmailnb.ui import CsrStep


def _install_practice(mr) -> None:
    issue = practice.sign_pending_csr(mr)
    r = run("install", "--mailroot", str(mr.path), "--cert", str(issue.server), "--chain", str(issue.intermediate))
    assert r.code == 0, r.err


@pytest.fixture
def mr(tmp_path):
    """A MailRoot with a key and a practice certificate installed."""
    mr = create_sandbox(tmp_path / "MailRoot")
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    _install_practice(mr)
    return mr


def _public(pem: bytes):
    return serialization.load_pem_private_key(pem, None).public_key()


def test_renew_makes_the_csr_from_the_installed_key_and_install_replaces_only_the_cert(mr):
    key_before = mr.server_key.read_bytes()
    stat_before = os.stat(mr.server_key)
    cert_before = mr.server_cert.read_bytes()
    r = run("csr", "--mailroot", str(mr.path), *CSR_ARGS, "--renew", "--json")
    assert r.code == 0, r.err
    assert r.json["key_source"] == "installed" and "replaces only server.cert" in r.err
    assert mr.pending_key.read_bytes() == key_before
    assert oct(os.stat(mr.pending_key).st_mode & 0o777) == "0o600"
    csr = x509.load_pem_x509_csr(mr.pending_csr.read_bytes())
    assert keys.public_key_matches(csr.public_key(), x509.load_pem_x509_certificate(cert_before))

    _install_practice(mr)
    assert mr.server_cert.read_bytes() != cert_before
    assert mr.server_key.read_bytes() == key_before
    assert os.stat(mr.server_key).st_ino == stat_before.st_ino  # not even rewritten
    install = [rec for rec in Store(mr).audit_records() if rec.action == "install"][-1]
    assert set(install.files) == {"server.cert"}
    assert run("diagnose", "--mailroot", str(mr.path)).code == 0


def test_install_leaves_a_pkcs8_key_alone_when_it_is_the_same_key(mr):
    # XMail 1.27 reads PKCS#8 keys too: an installed PKCS#8 form of the same
    # key is not rewritten (re-encoding it would replace server.key).
    key = serialization.load_pem_private_key(mr.server_key.read_bytes(), None)
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    mr.server_key.write_bytes(pkcs8)
    assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS, "--renew").code == 0
    assert mr.pending_key.read_bytes() == pkcs8
    _install_practice(mr)
    assert mr.server_key.read_bytes() == pkcs8


def test_a_new_key_is_still_installed_with_its_certificate(mr):
    key_before = mr.server_key.read_bytes()
    r = run("csr", "--mailroot", str(mr.path), *CSR_ARGS)
    assert r.code == 0 and "--renew" in r.err  # the renewal is offered
    _install_practice(mr)
    assert mr.server_key.read_bytes() != key_before
    assert _public(mr.server_key.read_bytes()) == x509.load_pem_x509_certificate(
        mr.server_cert.read_bytes()).public_key()


@pytest.mark.parametrize("case", ["no_cert", "no_key", "encrypted", "mismatch", "weak"])
def test_renewal_refuses_a_key_that_cannot_be_kept(tmp_path, case):
    mr = create_sandbox(tmp_path / "MailRoot")
    h = pki.hierarchy("mail.example.jp")
    if case != "no_cert":
        mr.server_cert.write_bytes(h.chain_pem)
    if case == "encrypted":
        mr.server_key.write_bytes(h.leaf.key_pem(password=b"secret"))
    elif case == "mismatch":
        mr.server_key.write_bytes(pki.hierarchy("mail.example.jp").leaf.key_pem())
    elif case == "weak":
        weak = pki.root("weak", key_size=1024)
        leaf = weak.sign("mail.example.jp", sans=["mail.example.jp"], key=pki.new_key("rsa", 1024))
        mr.server_cert.write_bytes(leaf.pem)
        mr.server_key.write_bytes(leaf.key_pem())
    elif case == "no_cert":
        mr.server_key.write_bytes(h.leaf.key_pem())
    before = {p.name: p.read_bytes() for p in mr.sslconf.iterdir() if p.is_file()}
    with pytest.raises(InputError) as exc:
        actions.renewal_key(mr)
    assert exc.value.field == "renew" and "new key" in exc.value.fix.render("en")
    r = run("csr", "--mailroot", str(mr.path), *CSR_ARGS, "--renew", "--json")
    assert r.code == 1 and r.json["error"]["field"] == "renew"
    assert r.json["error"]["message"] and "Traceback" not in r.err
    # Nothing changed.
    assert {p.name: p.read_bytes() for p in mr.sslconf.iterdir() if p.is_file()} == before
    assert not mr.pending_csr.exists()


def test_csr_step_offers_renewal_by_default_when_renewing(tmp_path, mr):
    target = tmp_path / "copy"
    shutil.copytree(mr.path, target)
    step = CsrStep(target, lang="en")
    assert step.renew_row.layout.display is None and step.renew.value == "renew"
    assert "xm-csr-renew" in step.renew._dom_classes
    assert step.rows["keytype"].layout.display == "none"
    assert "RSA 2048" in step.renew_hint.value
    for name, value in {"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku",
                        "org": "Example Co., Ltd.", "cn": "mail.example.jp"}.items():
        step.inputs[name].value = value
    step.generate(confirmed=True)
    assert step.wait(60)
    copy = resolve(target)
    assert copy.pending_key.read_bytes() == copy.server_key.read_bytes()
    assert "replaces only server.cert" in step.message.value
    assert json.loads(copy.pending_meta.read_text())["key_source"] == "installed"
    step.set_lang("ja")
    assert "更新" in " ".join(step.renew._options_labels)
    # A new key is one click away.
    step.renew.value = "new"
    assert step.rows["keytype"].layout.display is None


def test_csr_step_has_no_renewal_without_an_installed_certificate(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    step = CsrStep(mr.path, lang="en")
    assert step.renew_row.layout.display == "none" and not step.renewing
    assert step.rows["keytype"].layout.display is None


def test_csr_step_says_why_an_installed_key_cannot_be_kept(tmp_path):
    mr = create_sandbox(tmp_path / "MailRoot")
    h = pki.hierarchy("mail.example.jp")
    mr.server_cert.write_bytes(h.chain_pem)
    mr.server_key.write_bytes(h.leaf.key_pem(password=b"secret"))
    step = CsrStep(mr.path, lang="en")
    assert step.renew_row.layout.display == "none"
    assert "passphrase" in step.renew_unavailable.value


def test_csr_step_on_screen_follows_a_change_of_the_installed_pair(tmp_path, mr):
    # The step judges the installed pair again only when server.key or
    # server.cert changed; a change made elsewhere must still show.
    step = CsrStep(mr.path, lang="en")
    assert step.renewing
    step.refresh()  # nothing changed: still offered
    assert step.renewing and step.renew_row.layout.display is None
    other = pki.hierarchy("mail.example.jp")
    mr.server_key.write_bytes(other.leaf.key_pem())  # no longer the key of server.cert
    step.refresh()
    assert not step.renewing and step.renew_row.layout.display == "none"
    assert step.renew_unavailable.value
    mr.server_cert.write_bytes(other.chain_pem)  # the pair matches again
    step.refresh()
    assert step.renewing and "RSA 2048" in step.renew_hint.value

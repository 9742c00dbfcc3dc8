"""Hostile small files cost bounded time (issue 17 §1), and install names
the real cause first (issue 18 §3).

Each hostile case must end within a few seconds; the bound asserted is a
generous 10 s (the machine may be busy), far below the minutes they cost
before.  Every refusal names its limit.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from asn1crypto import keys as asn1keys

import hostile
import pki
from helpers import CSR_ARGS, run, sign_csr_file, tree
from xmailnb.i18n import Msg
from xmailnb.mailroot.resolve import resolve
from xmailnb.pki import certfiles
from xmailnb.pki import chain as chainmod
from xmailnb.errors import InputError

BOUND = 10.0


@pytest.fixture
def mailroot(tmp_path) -> Path:
    sandbox = resolve(None).path
    target = tmp_path / "MailRoot"
    shutil.copytree(sandbox, target)
    (target / "sslconf" / "xmailnb-sandbox.txt").unlink()
    return target


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def timed(func, *args, **kw):
    start = time.monotonic()
    result = func(*args, **kw)
    elapsed = time.monotonic() - start
    assert elapsed < BOUND, f"took {elapsed:.1f} s"
    return result


def settled(future):
    """*future* once done, polled (libfaketime hangs waits with a deadline);
    fails past the bound."""
    start = time.monotonic()
    while not future.done():
        assert time.monotonic() - start < BOUND, "the check did not end"
        time.sleep(0.02)
    return future


def first_line(r) -> str:
    return r.err.strip().splitlines()[0]


# -- many certificates ----------------------------------------------------------

@pytest.fixture(scope="module")
def same_name_1000():
    return hostile.pem(hostile.same_name(1000))


def test_thousand_same_name_certificates_refused_quickly_by_install(mailroot, tmp_path, same_name_1000):
    path = write(tmp_path / "x.pem", same_name_1000)
    before = tree(mailroot)
    r = timed(run, "install", "--mailroot", str(mailroot), "--cert", path, "--lang", "en")
    assert r.code == 1
    assert first_line(r) == f"{path} holds 1,000 certificates or more; the limit is 100 certificates per file."
    assert tree(mailroot) == before
    r = timed(run, "install", "--mailroot", str(mailroot), "--cert", path, "--lang", "ja")
    assert first_line(r) == f"{path} には証明書が 1,000 枚以上入っています。1 つのファイルで扱えるのは 100 枚までです。"


def test_thousand_same_name_certificates_in_server_cert_diagnosed_quickly(mailroot, same_name_1000):
    (mailroot / "server.cert").write_bytes(same_name_1000)
    r = timed(run, "diagnose", "--mailroot", str(mailroot), "--json", "--lang", "en")
    by = {f["check"]: f for f in r.json["findings"]}
    assert by["cert.present"]["status"] == "error"
    assert by["cert.present"]["message"] == \
        "server.cert holds 1,000 certificates or more; the limit is 100 certificates per file."


def test_ring_of_cross_signed_cas_in_server_cert_diagnosed_quickly(mailroot):
    (mailroot / "server.cert").write_bytes(hostile.pem(hostile.ring(1000)))
    r = timed(run, "diagnose", "--mailroot", str(mailroot), "--json", "--lang", "en")
    by = {f["check"]: f for f in r.json["findings"]}
    assert by["cert.present"]["message"] == \
        "server.cert holds 1,001 certificates or more; the limit is 100 certificates per file."


def test_hundred_same_name_certificates_in_server_cert_diagnosed_quickly(mailroot):
    (mailroot / "server.cert").write_bytes(hostile.pem(hostile.same_name(100)))
    r = timed(run, "diagnose", "--mailroot", str(mailroot), "--json", "--lang", "en")
    by = {f["check"]: f for f in r.json["findings"]}
    assert by["cert.present"]["status"] == "ok"
    assert by["cert.trust"]["message"] == \
        "Sorting out these certificates would take more than 2,000 signature checks: they were not used."


def test_ring_within_the_file_cap_is_judged_within_the_budget():
    certs = hostile.ring(99)
    verdict = timed(chainmod.judge, certs[0], certs[1:], anchors={"public": chainmod.public_roots()})
    assert not verdict.trusted
    assert timed(chainmod.check_order, certs) == []


def test_hundred_same_name_certificates_stop_at_the_signature_budget(mailroot, tmp_path):
    assert chainmod.SIGNATURE_BUDGET == 2_000
    path = write(tmp_path / "x.pem", hostile.pem(hostile.same_name(100)))
    r = timed(run, "install", "--mailroot", str(mailroot), "--cert", path, "--lang", "en")
    assert r.code == 1
    assert first_line(r) == ("Sorting out these certificates would take more than 2,000 signature checks: "
                             "they were not used.")


def test_certificates_of_all_files_together_are_capped(mailroot, tmp_path):
    h = pki.hierarchy()
    cas = hostile.pem(hostile.ring(60, leaf=False))
    r = timed(run, "install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "c.pem", h.leaf.pem),
              "--chain", write(tmp_path / "a.pem", cas), "--chain", write(tmp_path / "b.pem", cas),
              "--chain", write(tmp_path / "d.pem", b"never read"), "--lang", "en")
    # Refused as soon as the files read hold too many: the third is not read.
    assert first_line(r) == "The files given hold 121 certificates together; the limit is 100 for one install."


def test_the_budget_counts_signature_checks_and_names_its_limit():
    certs = hostile.same_name(30)
    with pytest.raises(chainmod.WorkLimitExceeded) as info:
        with chainmod.work_budget(100):
            chainmod.pick_leaf(certs)
    assert info.value.render("en").splitlines()[0] == \
        "Sorting out these certificates would take more than 100 signature checks: they were not used."
    # The same certificates within the default budget: several server certificates.
    with pytest.raises(InputError) as info:
        chainmod.pick_leaf(certs)
    assert info.value.msg.key == "chain.leaf.several"


def test_a_set_cancel_event_stops_the_work():
    import threading

    event = threading.Event()
    event.set()
    with pytest.raises(chainmod.Cancelled):
        with chainmod.work_budget(cancel=event):
            chainmod.pick_leaf(hostile.same_name(3))


# -- PKCS#12 and encrypted keys asking for 2^31-1 rounds ---------------------------

@pytest.fixture(scope="module")
def leaf_and_key():
    issued = pki.self_signed_leaf(key_kind="ec")
    return issued.cert, issued.key


@pytest.mark.parametrize("where", ["mac", "pbkdf2"])
@pytest.mark.parametrize("option", ["--cert", "--chain", "--key", "--ca"])
def test_pkcs12_iteration_bomb_refused_before_any_passphrase(mailroot, tmp_path, leaf_and_key, where, option):
    cert, key = leaf_and_key
    bomb = write(tmp_path / "bomb.p12", hostile.p12_bomb(cert, key, where=where))
    h = pki.hierarchy()
    argv = {"--cert": ["--cert", bomb],
            "--chain": ["--cert", write(tmp_path / "c.pem", h.leaf.pem), "--chain", bomb],
            "--key": ["--cert", write(tmp_path / "c.pem", h.leaf.pem), "--key", bomb],
            "--ca": ["--cert", write(tmp_path / "c.pem", h.leaf.pem), "--ca", bomb]}[option]
    pw = write(tmp_path / "pw.txt", b"secret\n")
    before = tree(mailroot)
    r = timed(run, "install", "--mailroot", str(mailroot), *argv, "--passphrase-file", pw, "--lang", "en")
    assert r.code == 1
    assert first_line(r) == (f"{bomb} asks for 2,147,483,647 rounds of password hashing; the limit is 1,000,000. "
                             "It was not opened: trying a passphrase would take minutes.")
    assert tree(mailroot) == before


def test_key_hidden_in_an_encrypted_part_is_counted_with_the_passphrase(mailroot, tmp_path, leaf_and_key):
    cert, key = leaf_and_key
    data = hostile.p12_nested_bomb(cert, key)
    assert certfiles.kdf_rounds(data) == [2048, 1, 1]  # without the passphrase, the part stays closed
    bomb = write(tmp_path / "nested.p12", data)
    pw = write(tmp_path / "pw.txt", b"secret\n")
    r = timed(run, "install", "--mailroot", str(mailroot), "--cert", bomb, "--passphrase-file", pw, "--lang", "en")
    assert first_line(r) == (f"{bomb} asks for 2,147,483,647 rounds of password hashing; the limit is 1,000,000. "
                             "It was not opened: trying a passphrase would take minutes.")


def test_pkcs12_rounds_are_read_from_the_structure(leaf_and_key):
    cert, key = leaf_and_key
    assert certfiles.kdf_rounds(hostile.p12_bomb(cert, key, where="mac")) == [hostile.HUGE_ROUNDS, 1, 1]
    assert certfiles.kdf_rounds(hostile.p12_bomb(cert, key, where="pbkdf2")) == [2048, 1, hostile.HUGE_ROUNDS]
    assert certfiles.kdf_rounds(cert.public_bytes(certfiles.serialization.Encoding.DER)) is None


def test_ordinary_pkcs12_still_opens(leaf_and_key):
    # cryptography writes 20,000 rounds for its best encryption, OpenSSL 2,048.
    h = pki.hierarchy()
    data = h.p12(b"secret")
    assert max(certfiles.kdf_rounds(data)) == 20_000
    material = certfiles.load_material(data, name="s.pfx", passphrase=b"secret")
    assert len(material.certificates) == 3 and len(material.keys) == 1


def test_encrypted_pkcs8_key_bomb_refused(tmp_path, mailroot):
    from cryptography.hazmat.primitives import serialization

    h = pki.hierarchy()
    der = h.leaf.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.BestAvailableEncryption(b"secret"))
    info = asn1keys.EncryptedPrivateKeyInfo.load(der)
    info["encryption_algorithm"]["parameters"]["key_derivation_func"]["parameters"]["iteration_count"] = \
        hostile.HUGE_ROUNDS
    key = write(tmp_path / "bomb.key", info.dump(force=True))
    pw = write(tmp_path / "pw.txt", b"secret\n")
    r = timed(run, "install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "c.pem", h.leaf.pem),
              "--key", key, "--passphrase-file", pw, "--lang", "ja")
    assert first_line(r) == (f"{key} はパスワードのハッシュ計算を 2,147,483,647 回求めています（上限は 1,000,000 回）。"
                             "パスフレーズを 1 回試すだけで何分もかかるため、開いていません。")


# -- name constraints --------------------------------------------------------------

@pytest.fixture(scope="module")
def nc_bomb():
    return hostile.name_constraint_bomb(10_000, 10_000)


def test_ten_thousand_names_against_ten_thousand_constraints_refused_quickly(nc_bomb):
    (leaf, ca), root = nc_bomb
    verdict = timed(chainmod.judge, leaf, [ca], anchors={"given": [root]})
    assert not verdict.trusted
    assert verdict.problem.reason is chainmod.Reason.NAME_CONSTRAINTS_BUDGET
    assert verdict.problem.msg.render("en") == (
        "the intermediate certificate CN=NC CA has more name constraints than clients check: 10,000 constraints "
        "against the 10,000 names of the server certificate are more than 1,048,576 comparisons, which OpenSSL "
        "refuses")


def test_openssl_also_refuses_the_name_constraint_bomb(nc_bomb, tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    (leaf, ca), root = nc_bomb
    args = [openssl, "verify", "-CAfile", write(tmp_path / "root.pem", hostile.pem([root])),
            "-untrusted", write(tmp_path / "ca.pem", hostile.pem([ca])), write(tmp_path / "leaf.pem", hostile.pem([leaf]))]
    done = timed(subprocess.run, args, capture_output=True, text=True)
    assert done.returncode != 0


def test_name_constraint_bomb_in_server_cert_diagnosed_quickly(mailroot, nc_bomb):
    (leaf, ca), root = nc_bomb
    (mailroot / "server.cert").write_bytes(hostile.pem([leaf, ca]))
    (mailroot / "certs.pem").write_bytes(hostile.pem([root]))
    r = timed(run, "diagnose", "--mailroot", str(mailroot), "--json", "--lang", "en")
    by = {f["check"]: f for f in r.json["findings"]}
    assert by["cert.trust"]["status"] == "error"
    assert by["cert.trust"]["reason"] == "name_constraints_budget"


# -- issue 18 §3: install names the real cause first ----------------------------------

@pytest.fixture
def signed(mailroot, tmp_path):
    """(root, intermediate, certificate for the waiting key) of a private CA."""
    root = pki.root("Budget Root")
    inter = root.sign("Budget Intermediate CA", ca=True)
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS)
    assert r.code == 0, r.err
    leaf = sign_csr_file(inter, mailroot / "sslconf" / "server.csr")
    return root, inter, leaf


def _install(mailroot, tmp_path, cert, chain=None, lang="en"):
    argv = ["install", "--mailroot", str(mailroot), "--cert", write(tmp_path / "server.crt", cert.pem)]
    if chain is not None:
        argv += ["--chain", write(tmp_path / chain[0], chain[1].pem)]
    return run(*argv, "--lang", lang)


def _old_key_cert(mailroot, signed):
    """A certificate signed for a key that is no longer waiting (a new CSR replaced it)."""
    root, inter, leaf = signed
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS)
    assert r.code == 0, r.err
    return leaf


def test_old_key_certificate_with_its_intermediate_names_the_key(mailroot, tmp_path, signed):
    leaf = _old_key_cert(mailroot, signed)
    r = _install(mailroot, tmp_path, leaf, ("int.pem", signed[1]))
    assert r.code == 1
    assert first_line(r) == ("No private key matching the certificate for mail.example.jp was found "
                             "(looked in the given files, sslconf/server.key and server.key).")


def test_old_key_certificate_without_intermediate_names_the_key_first(mailroot, tmp_path, signed):
    leaf = _old_key_cert(mailroot, signed)
    r = _install(mailroot, tmp_path, leaf)
    assert first_line(r) == ("No private key matching the certificate for mail.example.jp was found "
                             "(looked in the given files, sslconf/server.key and server.key).")
    r = _install(mailroot, tmp_path, leaf, lang="ja")
    assert first_line(r) == ("mail.example.jp の証明書と対になる秘密鍵が見つかりません"
                             "（指定されたファイル、sslconf/server.key、server.key を確認しました）。")


def test_unrelated_ca_given_as_intermediate_is_named(mailroot, tmp_path, signed):
    other = pki.root("Other Root").sign("Other CA", ca=True)
    r = _install(mailroot, tmp_path, signed[2], ("int.pem", other))
    path = tmp_path / "int.pem"
    assert first_line(r) == (f"{path} is CN=Other CA,O=xmailnb tests, which did not issue your certificate. "
                             "The intermediate certificate CN=Budget Intermediate CA,O=xmailnb tests is still missing.")


def test_root_given_as_intermediate_is_named(mailroot, tmp_path, signed):
    root = signed[0]
    r = _install(mailroot, tmp_path, signed[2], ("root.crt", root))
    path = tmp_path / "root.crt"
    assert first_line(r) == (f"{path} is the root CA itself (CN=Budget Root,O=xmailnb tests): server.cert does "
                             "not need it. The intermediate certificate CN=Budget Intermediate CA,O=xmailnb tests "
                             "is still missing.")
    r = _install(mailroot, tmp_path, signed[2], ("root.crt", root), lang="ja")
    assert first_line(r) == (f"{path} はルート CA そのもの（CN=Budget Root,O=xmailnb tests）で、server.cert には"
                             "要りません。中間証明書 CN=Budget Intermediate CA,O=xmailnb tests がまだ足りません。")


def test_the_right_pair_installs(mailroot, tmp_path, signed):
    root, inter, leaf = signed
    r = _install(mailroot, tmp_path, leaf, ("int.pem", inter))
    assert r.code == 0, r.err
    assert (mailroot / "server.cert").read_bytes() == leaf.pem + inter.pem


KEY_NONE = ("No private key matching the certificate for mail.example.jp was found "
            "(looked in the given files, sslconf/server.key and server.key).")
MISSING = "The intermediate certificate CN=Budget Intermediate CA,O=xmailnb tests is still missing."


@pytest.mark.parametrize("case", ["old key with intermediate", "old key alone", "unrelated CA", "root", "right pair"])
def test_causes_in_the_page_are_the_cli_s(mailroot, signed, case):
    from xmailnb.ui.install import InstallStep, upload_value

    root, inter, leaf = signed
    other = pki.root("Other Root").sign("Other CA", ca=True)
    chain, expected = {
        "old key with intermediate": (("int.pem", inter), KEY_NONE),
        "old key alone": (None, KEY_NONE),
        "unrelated CA": (("int.pem", other), f"int.pem is CN=Other CA,O=xmailnb tests, which did not issue your "
                                             f"certificate. {MISSING}"),
        "root": (("root.crt", root), f"root.crt is the root CA itself (CN=Budget Root,O=xmailnb tests): "
                                     f"server.cert does not need it. {MISSING}"),
        "right pair": (("int.pem", inter), "Everything checks out. Review what will be installed, above, then press Install."),
    }[case]
    if case.startswith("old key"):
        _old_key_cert(mailroot, signed)
    step = InstallStep(mailroot)
    if chain is not None:
        step.uploads["chain"].value = upload_value(chain[1].pem, chain[0])
    step.uploads["cert"].value = upload_value(leaf.pem, "server.crt")
    assert step.message.text().splitlines()[0] == expected
    assert (step.plan is not None) is (case == "right pair")


def test_messages_exist_in_both_languages():
    for key in ("certfiles.too_many", "certfiles.kdf.too_many", "actions.too_many", "chain.budget",
                "chain.trust.name_constraints_budget", "actions.chain.is_root", "actions.chain.not_issuer"):
        params = {"name": "f", "found": 1, "limit": 2, "rounds": 3, "which": "w", "names": 1, "constraints": 1,
                  "subject": "s", "issuer": "i"}
        for lang in ("en", "ja"):
            assert Msg(key, params).render(lang) != key
            assert Msg(key + ".fix", params).render(lang) != key + ".fix"


# -- the dashboard: off the kernel's thread, stoppable, one install per double-click ------

def test_page_checks_hostile_upload_in_a_worker_thread(mailroot):
    from xmailnb.ui.install import InstallStep, upload_value

    step = InstallStep(mailroot)
    step.threaded = True
    step.uploads["cert"].value = upload_value(hostile.pem(hostile.same_name(100)), "x.pem")
    future = step.future
    assert future is not None
    assert step.progress_row.layout.display is None  # "Checking the files…" with Stop, while it runs
    assert settled(future).exception() is not None
    assert step.progress_row.layout.display == "none"
    assert step.message.text().splitlines()[0] == \
        "Sorting out these certificates would take more than 2,000 signature checks: they were not used."
    assert step.plan is None and step.apply_button.disabled


def test_page_stop_cancels_the_check(mailroot):
    from xmailnb.ui.install import InstallStep, upload_value

    step = InstallStep(mailroot)
    step.threaded = True
    with step._ui_lock:  # the worker waits for the page: Stop comes first
        step.uploads["cert"].value = upload_value(hostile.pem(hostile.same_name(60)), "x.pem")
        step.stop()
    assert settled(step.future).result() is None
    assert step.message.text() == "The check was stopped; nothing was installed."
    assert step.progress_row.layout.display == "none"


def test_double_click_on_install_installs_once_and_keeps_the_result(mailroot, signed):
    from xmailnb.mailroot.store import Store
    from xmailnb.ui.install import InstallStep, upload_value

    root, inter, leaf = signed
    step = InstallStep(mailroot)
    step.uploads["cert"].value = upload_value(leaf.pem, "server.crt")
    step.uploads["chain"].value = upload_value(inter.pem, "int.pem")
    assert step.plan is not None
    before = len(Store(step.mailroot).history(limit=50, bookkeeping=False))
    step.apply_button.click()
    shown = step.message.text()
    step.apply_button.click()
    assert step.message.text() == shown
    assert shown.splitlines()[0] == Msg.of("ui.install.done").render("en")
    assert len(Store(step.mailroot).history(limit=50, bookkeeping=False)) == before + 1
    assert (mailroot / "server.cert").read_bytes() == leaf.pem + inter.pem


def test_many_encrypted_keys_add_up_to_the_file_limit(monkeypatch):
    from cryptography.hazmat.primitives import serialization

    assert certfiles.MAX_KDF_ROUNDS_TOTAL == 2_000_000
    # A smaller limit keeps the test quick; the sum is what is checked.
    monkeypatch.setattr(certfiles, "MAX_KDF_ROUNDS_TOTAL", 20_000)
    key = pki.new_key("ec")
    block = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.BestAvailableEncryption(b"secret"))
    assert certfiles.kdf_rounds(certfiles.serialization_der(block)) == [2048]
    assert len(certfiles.load_material(block * 9, name="keys.pem", passphrase=b"secret").keys) == 9
    with pytest.raises(InputError) as info:
        timed(certfiles.load_material, block * 50, name="keys.pem", passphrase=b"secret")
    # The 10th key would pass the limit: 10 x 2,048 rounds.
    assert info.value.render("en").splitlines()[0] == (
        "keys.pem asks for 20,480 rounds of password hashing; the limit is 20,000. "
        "It was not opened: trying a passphrase would take minutes.")

"""Hostile files: devices, FIFOs, folders and giant numbers where files and
values belong.  Each is refused at once with a message naming what it is;
never a hang, never an internal error, nothing changed, and the lock is free
right after."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

import pki
from helpers import CSR_ARGS, run
from helpers import tree as _tree


def tree(root: Path) -> dict[str, str]:
    """Files and folders below *root*, regular files by content, the rest by kind."""
    return _tree(root, folders=True)


@contextlib.contextmanager
def deadline(seconds: int = 20):
    """Fail (instead of hanging the suite) when a command blocks."""
    def expired(signum, frame):
        raise TimeoutError("the command blocked")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - started < seconds


@pytest.fixture(scope="module")
def h():
    return pki.hierarchy()


@pytest.fixture
def inputs(tmp_path, h) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (d / "chain.pem").write_bytes(h.chain_pem)
    (d / "key.pem").write_bytes(h.leaf.key_pem())
    (d / "root.pem").write_bytes(h.root.pem)
    os.mkfifo(d / "fifo")
    return d


def install(mailroot: Path, *argv: str, lang: str = "en"):
    return run("install", "--mailroot", str(mailroot), "--json", "--lang", lang, *argv)


def refused(r, key: str, *words: str) -> None:
    assert r.code == 1, (r.code, r.err)
    assert r.json["error"]["key"] == key, r.json
    for word in words:
        assert word in r.err, r.err
    assert "internal error" not in r.err.lower() and "内部エラー" not in r.err


# -- what the user hands over ------------------------------------------------------------

@pytest.mark.parametrize("option", ["--cert", "--chain", "--key", "--ca", "--passphrase-file"])
@pytest.mark.parametrize("what", ["/dev/zero", "fifo", "folder"])
def test_user_file_that_is_not_a_file(option, what, mailroot, inputs):
    path = {"/dev/zero": "/dev/zero", "fifo": str(inputs / "fifo"), "folder": str(inputs)}[what]
    kind = {"/dev/zero": ("device", "デバイス"), "fifo": ("FIFO", "FIFO"), "folder": ("folder", "フォルダー")}[what]
    args = {"--cert": str(inputs / "chain.pem"), "--key": str(inputs / "key.pem")}
    args[option] = path
    before = tree(mailroot)
    for lang, word in (("en", kind[0]), ("ja", kind[1])):
        with deadline():
            r = install(mailroot, *[x for pair in args.items() for x in pair], lang=lang)
        refused(r, "actions.not_regular", path, word)
    assert tree(mailroot) == before


def test_passphrase_file_with_a_bom_is_read_as_editors_write_it(mailroot, inputs, h):
    (inputs / "enc.pem").write_bytes(h.leaf.key_pem(password=b"s3cret pass"))
    (inputs / "pass.txt").write_bytes("\ufeffs3cret pass\r\n".encode("utf-8"))
    r = install(mailroot, "--cert", str(inputs / "chain.pem"), "--key", str(inputs / "enc.pem"),
                "--passphrase-file", str(inputs / "pass.txt"))
    assert r.code == 0, r.err
    assert b"ENCRYPTED" not in (mailroot / "server.key").read_bytes()


# -- what is in the MailRoot ------------------------------------------------------------

def _plant(mailroot: Path, rel: str, what: str) -> None:
    path = mailroot.joinpath(*rel.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink() if not path.is_dir() else shutil.rmtree(path)
    if what == "fifo":
        os.mkfifo(path)
    elif what == "folder":
        path.mkdir()
    elif what == "/dev/zero":
        path.symlink_to("/dev/zero")


KINDS = {"fifo": "FIFO", "folder": "folder", "/dev/zero": "symbolic link"}


@pytest.mark.parametrize("rel", ["server.cert", "server.key", "certs.pem"])
@pytest.mark.parametrize("what", ["fifo", "folder", "/dev/zero"])
def test_install_over_a_mailroot_file_that_is_not_a_file(rel, what, mailroot, inputs):
    _plant(mailroot, rel, what)
    before = tree(mailroot)
    with deadline():
        r = install(mailroot, "--cert", str(inputs / "chain.pem"), "--key", str(inputs / "key.pem"),
                    "--ca", str(inputs / "root.pem"), "--allow-incomplete-chain")
    expected = "store.file.symlink" if what == "/dev/zero" else None
    assert r.code == 1, r.err
    if expected:
        assert r.json["error"]["key"] == expected
    assert rel in r.err and KINDS[what] in r.err, r.err
    assert "internal error" not in r.err.lower()
    after = tree(mailroot)
    assert {k: v for k, v in after.items() if not k.startswith("sslconf/")} == \
        {k: v for k, v in before.items() if not k.startswith("sslconf/")}
    assert not (mailroot / "sslconf" / "archive").exists()  # nothing was archived: nothing was replaced
    # The lock is free at once: the next command is not told "busy".
    with deadline():
        assert run("settings", "--mailroot", str(mailroot), "--set", "SSLUseCertsFile=1").code == 0


@pytest.mark.parametrize("rel", ["server.cert", "server.key", "certs.pem", "sslconf/server.csr",
                                 "sslconf/server.key"])
@pytest.mark.parametrize("what", ["fifo", "folder", "/dev/zero"])
def test_diagnose_names_what_is_there(rel, what, mailroot):
    _plant(mailroot, rel, what)
    for lang in ("en", "ja"):
        with deadline():
            r = run("diagnose", "--mailroot", str(mailroot), "--lang", lang)
        assert r.code in (0, 1), r.err
        assert "internal error" not in r.err.lower() and "内部エラー" not in r.err
    with deadline():
        r = run("diagnose", "--mailroot", str(mailroot), "--json")
    text = " ".join(f["message"] for f in r.json["findings"])
    if rel in ("server.cert", "server.key", "sslconf/server.csr"):
        kind = {"fifo": "FIFO", "folder": "folder", "/dev/zero": "device"}[what]
        assert kind in text, text


@pytest.mark.parametrize("rel", ["sslconf/server.csr", "sslconf/server.key"])
def test_csr_and_practice_over_a_fifo(rel, mailroot):
    mailroot_sandbox = mailroot
    _plant(mailroot, rel, "fifo")
    with deadline():
        r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS, "--json")
    assert r.code == 1 and "FIFO" in r.err and rel in r.err, r.err
    with deadline():
        r = run("practice-ca", "sign", "--mailroot", str(mailroot_sandbox), "--json")
    assert r.code in (1, 2) and "internal error" not in r.err.lower(), r.err


@pytest.mark.parametrize("what", ["fifo", "folder", "/dev/zero"])
def test_server_tab_that_is_not_a_file(what, mailroot):
    _plant(mailroot, "server.tab", what)
    for command in (["diagnose"], ["settings"], ["settings", "--set", "SSLUseCertsFile=1"], ["history"]):
        with deadline():
            r = run(*command, "--mailroot", str(mailroot), "--json")
        assert r.code in (1, 2), (command, r.err)
        assert "internal error" not in r.err.lower()


def test_unreadable_mailroot_is_exit_2(tmp_path, mailroot):
    """As a user who may not search the folder (root could, so the command
    runs as nobody)."""
    import subprocess
    import sys

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a command as another user")
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"xmailnb-unreadable-{os.getpid()}"
    base.mkdir(mode=0o755)
    try:
        target = base / "MailRoot"
        shutil.copytree(mailroot, target)
        os.chmod(target, 0o700)  # root's, not nobody's
        for arg in (str(target), str(target / "sub")):
            proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   sys.executable, "-m", "xmailnb", "diagnose", "--mailroot", arg, "--json",
                                   "--lang", "en"],
                                  capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "XMAILNB_DATA_DIR": str(base / "data")})
            assert proc.returncode == 2, proc.stderr
            assert "cannot be read" in proc.stderr and "internal" not in proc.stderr.lower()
    finally:
        shutil.rmtree(base)


# -- numbers of thousands of digits ---------------------------------------------------------

HUGE = "9" * 5000


def test_huge_key_size(mailroot):
    before = tree(mailroot)
    r = run("csr", "--mailroot", str(mailroot), *CSR_ARGS, "--key-size", HUGE, "--json")
    refused(r, "keys.size.unsupported")
    assert len(r.err) < 2000
    assert tree(mailroot) == before


def test_huge_cert_depth(mailroot):
    before = tree(mailroot)
    r = run("settings", "--mailroot", str(mailroot), "--set", f"SSLMaxCertsDepth={HUGE}", "--json")
    refused(r, "servertab.value.int_range", "SSLMaxCertsDepth")
    assert len(r.err) < 2000
    assert tree(mailroot) == before


def test_huge_numbers_inside_server_tab(mailroot):
    tab = mailroot / "server.tab"
    tab.write_bytes(tab.read_bytes() + f'"SSLMaxCertsDepth"\t"{HUGE}"\n"EnableSMTP-TLS"\t"{HUGE}"\n'.encode())
    for command in (["diagnose"], ["settings"], ["settings", "--set", "SSLUseCertsFile=1"]):
        r = run(*command, "--mailroot", str(mailroot))
        assert r.code in (0, 1), r.err
        assert "internal error" not in r.err.lower()

"""The system around a change: owners, read-only trees, broken output,
hostile text.

- Run as root on a MailRoot that belongs to XMail's account, new files keep
  that account as owner (keys 0600), and that account can still take the
  lock and write; the diagnosis says when XMail could not read its key.
- On a read-only MailRoot (a read-only mount, or a tree without write
  permission for this user), every write is refused before anything is
  touched: no archive entry, no "could not be put back", no mode changed.
- A change that was saved is reported as saved even when stdout is closed,
  full or cannot encode Japanese.
- Control characters, line breaks and bidi overrides in certificate names,
  file names or anything else a message shows come out escaped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import pki
from helpers import CSR_ARGS, run, sandbox_copy, tree
from xmailnb.pki import keys
from xmailnb.i18n import Msg

pytestmark = pytest.mark.slow  # subprocesses, users and mounts

NOBODY = 65534
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
HAVE_SETPRIV = shutil.which("setpriv") is not None
as_root = pytest.mark.skipif(not (IS_ROOT and HAVE_SETPRIV), reason="needs root and setpriv")


def snapshot(root: Path) -> dict[str, tuple]:
    """Mode, owner and content of everything below *root*, *root* too."""
    return tree(root, folders=True, meta=("mode", "uid", "gid"))


@pytest.fixture(scope="module")
def h():
    return pki.hierarchy()


@pytest.fixture
def shared(tmp_path):
    """A folder every account can traverse (pytest's own is root's only)."""
    base = Path(tempfile.mkdtemp(prefix="xmailnb-sys-"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        subprocess.run(["chattr", "-R", "-i", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def files(shared, h) -> Path:
    d = shared / "in"
    d.mkdir(mode=0o755)
    other = pki.hierarchy()
    for name, data in (("chain.pem", h.chain_pem), ("key.pem", h.leaf.key_pem()),
                       ("chain2.pem", other.chain_pem), ("key2.pem", other.leaf.key_pem())):
        (d / name).write_bytes(data)
        os.chmod(d / name, 0o644)
    return d


def _mailroot(base: Path) -> Path:
    target = base / "MailRoot"
    sandbox_copy(target)
    return target


def as_nobody(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           sys.executable, "-m", "xmailnb", *argv],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XMAILNB_LANG": "en", "XMAILNB_DATA_DIR": "/nonexistent", **(env or {})})


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, _dirs, names in os.walk(root):
        os.chown(dirpath, uid, gid)
        for name in names:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


# -- ownership ------------------------------------------------------------------------------

@as_root
def test_root_install_keeps_the_service_account_as_owner(shared, files):
    mailroot = _mailroot(shared)
    _chown_tree(mailroot, NOBODY, NOBODY)
    r = run("install", "--mailroot", str(mailroot), "--cert", str(files / "chain.pem"),
            "--key", str(files / "key.pem"))
    assert r.code == 0, r.err
    for rel in ("server.cert", "server.key", "sslconf", "sslconf/archive", "sslconf/audit.log",
                "sslconf/.xmailnb.lock"):
        st = (mailroot / rel).lstat()
        assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY), f"{rel} is owned by {st.st_uid}:{st.st_gid}"
    assert stat.S_IMODE((mailroot / "server.key").stat().st_mode) == 0o600
    for entry in (mailroot / "sslconf" / "archive").rglob("*"):
        assert entry.lstat().st_uid == NOBODY, entry
    # The diagnosis (the service account's view) is content...
    r = run("diagnose", "--mailroot", str(mailroot), "--json")
    perm = next(f for f in r.json["findings"] if f["check"] == "key.permissions")
    assert perm["status"] == "ok"
    # ...and the service account itself can still lock, archive and write.
    proc = as_nobody("settings", "--mailroot", str(mailroot), "--set", "SSLUseCertsFile=1")
    assert proc.returncode == 0, proc.stderr
    proc = as_nobody("install", "--mailroot", str(mailroot), "--cert", str(files / "chain.pem"),
                     "--key", str(files / "key.pem"))
    assert proc.returncode == 0, proc.stderr
    proc = as_nobody("rollback", "--mailroot", str(mailroot))
    assert proc.returncode == 0, proc.stderr


@as_root
def test_diagnose_says_when_xmail_cannot_read_its_key(shared, files):
    mailroot = _mailroot(shared)
    assert run("install", "--mailroot", str(mailroot), "--cert", str(files / "chain.pem"),
               "--key", str(files / "key.pem")).code == 0
    _chown_tree(mailroot, NOBODY, NOBODY)
    os.chown(mailroot / "server.key", 0, 0)  # as an older xmailnb run as root left it
    os.chmod(mailroot / "server.key", 0o600)
    for lang, word in (("en", "nobody"), ("ja", "nobody")):
        r = run("diagnose", "--mailroot", str(mailroot), "--json", "--lang", lang)
        perm = next(f for f in r.json["findings"] if f["check"] == "key.permissions")
        assert perm["status"] == "error", perm
        assert word in perm["message"] and "chown nobody" in perm["fix"]
    assert r.code == 1


@as_root
def test_lock_file_made_by_root_does_not_lock_out_the_owner(shared, files):
    mailroot = _mailroot(shared)
    _chown_tree(mailroot, NOBODY, NOBODY)
    lock = mailroot / "sslconf" / ".xmailnb.lock"
    lock.unlink(missing_ok=True)
    assert run("settings", "--mailroot", str(mailroot), "--set", "SSLUseCertsFile=1").code == 0
    assert lock.stat().st_uid == NOBODY
    proc = as_nobody("settings", "--mailroot", str(mailroot), "--set", "SSLUseCertsFile=0")
    assert proc.returncode == 0, proc.stderr


# -- read-only trees --------------------------------------------------------------------------

WRITES = {
    "install": lambda f: ["install", "--cert", str(f / "chain2.pem"), "--key", str(f / "key2.pem")],
    "settings": lambda f: ["settings", "--set", "SSLUseCertsFile=1"],
    "csr": lambda f: ["csr", *CSR_ARGS],
    "rollback": lambda f: ["rollback"],
    "practice-ca": lambda f: ["practice-ca", "sign"],
}


def _prepare_history(mailroot: Path, files: Path) -> None:
    assert run("install", "--mailroot", str(mailroot), "--cert", str(files / "chain.pem"),
               "--key", str(files / "key.pem")).code == 0
    assert run("csr", "--mailroot", str(mailroot), *CSR_ARGS).code == 0


@contextlib.contextmanager
def read_only_mount(base: Path):
    mnt = base / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.skipif(not IS_ROOT, reason="mounting needs root")
def test_read_only_mount_refuses_every_write_cleanly(shared, files):
    with read_only_mount(shared) as mnt:
        mailroot = mnt / "MailRoot"
        sandbox_copy(mailroot)
        _prepare_history(mailroot, files)
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode == 0
        before = snapshot(mailroot)
        for name, argv in WRITES.items():
            for lang in ("en", "ja"):
                r = run(*argv(files), "--mailroot", str(mailroot), "--json", "--lang", lang)
                assert r.code == 1, (name, r.err)
                assert r.json["error"]["key"] == "store.readonly", (name, r.json)
                assert "could not be put back" not in r.err and "元に戻せません" not in r.err
            assert snapshot(mailroot) == before, name
        # Reading still works.
        assert run("diagnose", "--mailroot", str(mailroot)).code in (0, 1)
        assert run("history", "--mailroot", str(mailroot)).code == 0


@as_root
def test_tree_without_write_permission_refuses_every_write_cleanly(shared, files):
    mailroot = _mailroot(shared)
    _prepare_history(mailroot, files)
    _chown_tree(mailroot, NOBODY, NOBODY)
    for dirpath, _dirs, names in os.walk(mailroot):  # chmod -R a-w
        for p in [dirpath, *(os.path.join(dirpath, n) for n in names)]:
            os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & ~0o222)
    before = snapshot(mailroot)
    for name, argv in WRITES.items():
        proc = as_nobody(*argv(files), "--mailroot", str(mailroot), "--json")
        assert proc.returncode == 1, (name, proc.stderr)
        assert "cannot be changed by this user" in proc.stderr, (name, proc.stderr)
        assert "could not be put back" not in proc.stderr
        assert snapshot(mailroot) == before, name  # not even a folder's mode


# -- output that fails after a saved change ------------------------------------------------------

def _cli(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xmailnb", *argv], capture_output=kw.pop("capture", True),
                          text=True, timeout=120, **kw)


FAKETIME = "faketime" in os.environ.get("LD_PRELOAD", "")


@pytest.mark.parametrize("how", ["full", "closed", "unwritable", "ascii", "pipe"])
def test_saved_change_is_reported_as_saved_when_output_fails(how, tmp_path, files):
    if how == "closed" and FAKETIME:
        # libfaketime would open its shared clock on the free descriptor 1,
        # and the output would then overwrite every process's faked clock.
        pytest.skip("stdout cannot be closed under faketime; 'unwritable' covers it")
    mailroot = _mailroot(tmp_path)
    argv = ["install", "--mailroot", str(mailroot), "--cert", str(files / "chain.pem"),
            "--key", str(files / "key.pem"), "--lang", "ja"]
    env = {**os.environ}
    if how == "full":
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "xmailnb", *argv], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=120)
    elif how in ("closed", "unwritable"):
        # Closed, or open for reading only: every write to stdout fails.
        redirect = ">&-" if how == "closed" else "1</dev/null"
        proc = subprocess.run(["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-m", "xmailnb", *argv],
                              stderr=subprocess.PIPE, text=True, timeout=120)
    elif how == "ascii":
        env["PYTHONIOENCODING"] = "ascii"
        proc = subprocess.run([sys.executable, "-m", "xmailnb", *argv], capture_output=True, timeout=120, env=env)
        proc = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode("ascii"),
                                           proc.stderr.decode("ascii"))
        assert "\\u" in proc.stderr or "\\x" in proc.stderr  # escaped, not lost
    else:
        p = subprocess.Popen([sys.executable, "-m", "xmailnb", *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        p.stdout.close()  # the reader goes away before reading anything
        proc = subprocess.CompletedProcess(p.args, p.wait(120), "", p.stderr.read())
    assert proc.returncode == 0, proc.stderr
    assert "Unexpected internal error" not in proc.stderr and "内部エラー" not in proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    if how != "ascii":
        assert "保存しました" in proc.stderr  # "the change was saved"
    assert (mailroot / "server.key").exists()
    leaf = x509.load_pem_x509_certificates((mailroot / "server.cert").read_bytes())[0]
    key = serialization.load_pem_private_key((mailroot / "server.key").read_bytes(), None)
    assert keys.public_key_matches(key, leaf)


def test_output_failure_without_a_change_is_not_an_internal_error(tmp_path):
    mailroot = _mailroot(tmp_path)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "xmailnb", "diagnose", "--mailroot", str(mailroot)],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "XMAILNB_LANG": "en"})
    assert proc.returncode == 1
    assert "Could not write the output" in proc.stderr and "internal" not in proc.stderr.lower()
    assert "Exception ignored" not in proc.stderr


# -- terminal injection -------------------------------------------------------------------------

EVIL = "evil\x1b[2J\x1b]0;owned\x07\rOK line\nforged\u202etxt.exe\x9b31m"
DANGEROUS = ("\x1b", "\x07", "\r", "\u202e", "\x9b")


def _clean(text: str) -> None:
    for ch in DANGEROUS:
        assert ch not in text, repr(ch)


def test_escape_keeps_templates_multiline_and_values_single_line():
    rendered = Msg.of("cli.warning", text=EVIL).render("en")
    _clean(rendered)
    assert "\n" not in rendered and "\\x1b" in rendered and "\\u202e" in rendered
    # A value that is itself a message keeps that message's own text.
    assert Msg.of("cli.warning", text=Msg.of("cli.interrupted")).render("en").startswith("Warning: Interrupted")


def test_hostile_certificate_names_are_shown_escaped(tmp_path):
    r = pki.root()
    inter = r.sign(EVIL, ca=True)
    leaf = inter.sign("mail.example.jp")
    d = tmp_path / "in"
    d.mkdir()
    (d / "chain.pem").write_bytes(leaf.pem + inter.pem)
    (d / "key.pem").write_bytes(leaf.key_pem())
    mailroot = _mailroot(tmp_path)
    for lang in ("en", "ja"):
        res = run("install", "--mailroot", str(mailroot), "--cert", str(d / "chain.pem"), "--key",
                  str(d / "key.pem"), "--lang", lang)
        assert res.code == 0, res.err
        _clean(res.out + res.err)
        assert "forged" in res.out and "\nforged" not in res.out  # shown, on the same line
        res = run("diagnose", "--mailroot", str(mailroot), "--lang", lang)
        _clean(res.out + res.err)
        res = run("diagnose", "--mailroot", str(mailroot), "--json", "--lang", lang)
        _clean(res.out)


def test_hostile_file_name_is_shown_escaped(tmp_path):
    mailroot = _mailroot(tmp_path)
    res = run("install", "--mailroot", str(mailroot), "--cert", str(tmp_path / EVIL.replace("\n", "")))
    assert res.code == 1
    _clean(res.out + res.err)
    assert res.err.count("\n") <= 3  # the message and its fix; no forged line

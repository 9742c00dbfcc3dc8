"""Shared helpers for command-line and diagnosis tests."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cryptography import x509

import pki
from xmailnb.cli.main import main
from xmailnb.mailroot.resolve import resolve

#: Command-line talk: an option (``--chain``) or a command (``xmailnb install``).
#: The page names its own controls instead (issue 13); certificate names such
#: as "xmailnb Practice Root CA" are not commands.
CLI_TALK = re.compile(r"--[a-z]|\bxmailnb\s+[a-z]")

CSR_ARGS = ["--country", "JP", "--state", "Tokyo", "--locality", "Shibuya-ku",
            "--org", "Example Co., Ltd.", "--cn", "mail.example.jp"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def run(*argv: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    result = Result(code, out.getvalue(), err.getvalue())
    assert "Traceback" not in result.err and "Traceback" not in result.out
    return result


#: The store's lock file: it comes and goes with every change.
LOCK = ".xmailnb.lock"


def tree(root: Path, *, exclude: Sequence[str] = (LOCK,), folders: bool = False,
         meta: Sequence[str] = ()) -> dict[str, Any]:
    """What is below *root*, links not followed: a regular file by the
    SHA-256 of its content, anything else by its kind (reading a FIFO would
    block the test itself).

    Args:
        exclude: fnmatch patterns, matched against the POSIX path relative
            to *root* and against the bare name; matches are left out.
        folders: list the folders too (and *root* itself as ``"."``).
        meta: ``st_`` fields (``"mode"``, ``"uid"``, ``"gid"``) to compare
            besides the content: each value becomes ``(*fields, digest)``.
    """
    def entry(path: Path) -> Any:
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) \
            else stat.filemode(st.st_mode)
        return (*(getattr(st, f"st_{f}") for f in meta), digest) if meta else digest

    out: dict[str, Any] = {".": entry(root)} if folders else {}
    for dirpath, dirs, files in os.walk(root):
        for name in (dirs + files) if folders else files:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in exclude):
                continue
            out[rel] = entry(path)
    return out


#: The store's own bookkeeping: left out of the MailRoot as a user sees it.
STORE_BOOKKEEPING = ("sslconf/archive/*", "sslconf/audit.log", LOCK)


#: The step progress log (``xmailnb.mailroot.layout.REL_PROGRESS_LOG``).
PROGRESS_LOG = "sslconf/progress.jsonl"

#: Progress-log records of what the user looked at, not of the MailRoot's
#: state: a diagnosis was shown (step 1's mark, DESIGN §6; every
#: ``xmailnb diagnose`` appends one) and the step on screen.
LOOKED_AT_EVENTS = frozenset({"diagnose", "step"})


def _looked_at(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("event") in LOOKED_AT_EVENTS


def user_view(root: Path) -> dict[str, Any]:
    """The MailRoot as a user sees it: :func:`tree` of every file but the
    store's bookkeeping (archive, audit log, lock).

    The progress log counts without its ``diagnose`` and ``step`` lines
    (:data:`LOOKED_AT_EVENTS`): looking at a MailRoot changes nothing in it.
    Every other line (a probe, a notice, a line that is not JSON) stays, and
    a log with no line left is the same as no log.
    """
    view = tree(root, exclude=STORE_BOOKKEEPING)
    log = root / PROGRESS_LOG
    if PROGRESS_LOG in view and stat.S_ISREG(log.lstat().st_mode):
        kept = b"".join(line for line in log.read_bytes().splitlines(keepends=True) if not _looked_at(line))
        if kept:
            view[PROGRESS_LOG] = hashlib.sha256(kept).hexdigest()
        else:
            del view[PROGRESS_LOG]
    return view


def store_leftovers(root: Path) -> list[str]:
    """What an interrupted or failed change may leave behind and the store
    must clean up: temp files, half-made archive folders, intent journals."""
    return [str(p) for p in root.rglob("*")
            if p.name.endswith((".xmailnb-tmp", ".partial")) or p.name.startswith(".xmailnb-journal")]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at this moment)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_block(count: int = 4) -> int:
    """A port on 127.0.0.1 with the *count* - 1 ports after it free as well."""
    for _ in range(200):
        base = free_port()
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free block of ports")


def sandbox_copy(target: Path) -> Path:
    """A copy of the stock practice sandbox MailRoot at *target*."""
    shutil.copytree(resolve(None).path, target)
    return target


def sign_csr_file(ca: pki.Issued, csr_path: Path, **kw) -> pki.Issued:
    """Issue a certificate for the CSR at *csr_path*, like a CA would."""
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = san.get_values_for_type(x509.DNSName)
    cn = csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    return ca.sign(cn, sans=kw.pop("sans", names), public_key=csr.public_key(), **kw)


def interrupt(proc, timeout: float = 30) -> None:
    """Stop a server process as Ctrl-C would; kill it if it does not exit."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_file_changed(path: Path, before: bytes | None = None, timeout: float = 60) -> None:
    """Wait until *path* is a file whose content differs from *before*
    (``None``: until it exists), e.g. what a click in the browser writes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_bytes() != before:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not change")

"""Starting over: reset the practice sandbox MailRoot.

The sandbox (:func:`xmailnb.mailroot.layout.sandbox_path`, in the folder
``XMAILNB_DATA_DIR`` names, else the user's data folder) is where a new admin
practises.  :func:`reset_sandbox` gives a fresh one in the same place:

* It only ever touches a sandbox: the folder must be a real folder (not a
  symbolic link) holding the sandbox marker as a regular file; a live
  MailRoot (no marker) is refused with nothing changed.
* Nothing is lost: the old sandbox is moved whole into
  ``sandbox-archive/<time>/`` beside it (a rename, no copy), so its keys stay
  0600 where they were and it can be looked at or moved back by hand.
* The fresh sandbox is built in a temporary folder beside the old one and
  renamed into place, while the old one's store lock is held, so no writer
  is half-way through a change when it goes.
* Every reset counts up a *generation* (``sslconf/xmailnb-generation.json``
  in the new sandbox).  A page that has the sandbox open watches it
  (:mod:`xmailnb.ui.reset_watch`) and says that the sandbox was reset.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import socket
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from .. import clock
from ..boundedjson import loads as bounded_loads
from ..errors import InputError, XmailnbError
from ..files import read_regular
from .layout import REL_GENERATION, SANDBOX_MARKER, MailRoot, sandbox_path
from .servertab import stock_servertab
from .store import Store

if os.name == "posix":
    import fcntl
else:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ARCHIVE_DIRNAME",
    "create_sandbox",
    "Generation",
    "ResetResult",
    "archive_folder",
    "check_sandbox",
    "generation",
    "reset_sandbox",
    "recover_reset",
    "practice_ports",
    "suggested_practice_ports",
]

log = logging.getLogger(__name__)

ARCHIVE_DIRNAME = "sandbox-archive"
_MAX_GENERATION_BYTES = 4096
_FRESH_PREFIX = ".sandbox-new-"
_FRESH = re.compile(r"\.sandbox-new-[A-Za-z0-9_]{1,64}")
_DEST = re.compile(ARCHIVE_DIRNAME + r"/[0-9]{8}T[0-9]{12}Z(-[a-z0-9-]{1,40})?")


# Folders of a stock XMail MailRoot; the sandbox gets them so that it looks
# (and is diagnosed) like the real thing.
_STOCK_DIRS = ("domains", "spool", "tabindex", "dnscache", "logs", "pop3linklocks",
               "userauth", "custdomains", "cmdaliases", "filters", "msgsync", "sslconf")
_STOCK_TABS = ("domains.tab", "mailusers.tab", "aliases.tab", "extaliases.tab",
               "smtpgw.tab", "smtpfwd.tab", "smtprelay.tab", "spammers.tab",
               "spam-address.tab", "pop3links.tab", "ctrlaccounts.tab",
               "aliasdomain.tab", "filters.in.tab", "filters.out.tab",
               "filters.pre-data.tab", "filters.post-data.tab", "filters.post-rcpt.tab",
               "userdef.tab", "smtpauth.tab", "ctrl.ipmap.tab", "smtp.ipmap.tab",
               "pop3.ipmap.tab", "finger.ipmap.tab", "smtpextauth.tab")


def create_sandbox(path: Path) -> MailRoot:
    """Create (or complete) a training MailRoot at *path*.

    The server.tab is a realistic stock one with the TLS variables commented
    out, as XMail ships it.  Existing files are never overwritten.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in _STOCK_DIRS:
        (path / name).mkdir(exist_ok=True)
    if not (path / "sslconf").is_symlink():  # never chmod through a link
        os.chmod(path / "sslconf", 0o700)
    for name in _STOCK_TABS:
        tab = path / name
        if not tab.exists():
            tab.write_bytes(b"")
    marker = path.joinpath(*SANDBOX_MARKER.split("/"))
    if not marker.exists():
        marker.write_text("This MailRoot is the xmailnb practice sandbox, not a live XMail server.\n",
                          encoding="utf-8")
    (path / "domains" / "example.jp").mkdir(exist_ok=True)
    domains = path / "domains.tab"
    if domains.stat().st_size == 0:
        domains.write_bytes(b'"example.jp"\n')
    server_tab = path / "server.tab"
    if not server_tab.exists():
        tmp = path / ".server.tab.tmp"
        tmp.write_bytes(stock_servertab())
        os.replace(tmp, server_tab)
    return MailRoot(path=path, is_sandbox=True)


@dataclass(frozen=True)
class Generation:
    """Which fresh start of the sandbox this is.

    Attributes:
        number: 0 for a sandbox never reset, then 1, 2, ...
        reset_at: when the reset happened (ISO 8601), or ``""``.
        by: who asked for it: ``"self"`` (the command line, the page) or
            ``"trainer"`` (the classroom board).
    """

    number: int = 0
    reset_at: str = ""
    by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "reset_at": self.reset_at, "by": self.by}


@dataclass(frozen=True)
class ResetResult:
    """What :func:`reset_sandbox` did.

    Attributes:
        mailroot: the fresh sandbox (same path as before).
        archived: where the old sandbox went, or ``None`` when there was none.
        generation: the fresh sandbox's generation.
    """

    mailroot: MailRoot
    archived: Path | None
    generation: Generation


def generation(path: str | os.PathLike[str] | MailRoot) -> Generation:
    """The generation of the sandbox at *path* (0 when it was never reset or
    the record is unreadable)."""
    root = path.path if isinstance(path, MailRoot) else Path(path)
    try:
        doc = bounded_loads(read_regular(root.joinpath(*REL_GENERATION.split("/")), _MAX_GENERATION_BYTES),
                            name=REL_GENERATION, max_bytes=_MAX_GENERATION_BYTES)
    except (OSError, ValueError):
        return Generation()
    if not isinstance(doc, dict):
        return Generation()
    number = doc.get("generation")
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        return Generation()
    return Generation(number, str(doc.get("reset_at") or ""), str(doc.get("by") or ""))


def archive_folder(path: Path) -> Path:
    """Where :func:`reset_sandbox` keeps the old sandboxes of *path*."""
    return path.parent / ARCHIVE_DIRNAME


def check_sandbox(path: Path) -> None:
    """Refuse anything at *path* that is not a practice sandbox.

    Looked at with ``lstat``: a symbolic link (to a live MailRoot or
    anywhere) is refused, and so is a marker that is a link or not a file.

    Raises:
        InputError: *path* is a link, not a folder, or has no sandbox marker.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise InputError.of("sandbox.missing", "sandbox.missing.fix", path=str(path)) from None
    except OSError as exc:
        raise InputError.of("sandbox.unreadable", "sandbox.unreadable.fix", path=str(path),
                            reason=exc.strerror or str(exc)) from None
    if stat.S_ISLNK(st.st_mode):
        raise InputError.of("sandbox.symlink", "sandbox.symlink.fix", path=str(path))
    if not stat.S_ISDIR(st.st_mode):
        raise InputError.of("sandbox.not_sandbox", "sandbox.not_sandbox.fix", path=str(path))
    sslconf = path / "sslconf"
    marker = path.joinpath(*SANDBOX_MARKER.split("/"))
    try:
        ok = (stat.S_ISDIR(os.lstat(sslconf).st_mode) and stat.S_ISREG(os.lstat(marker).st_mode))
    except OSError:
        ok = False
    if not ok:
        raise InputError.of("sandbox.not_sandbox", "sandbox.not_sandbox.fix", path=str(path))


def _write_generation(root: Path, gen: Generation) -> None:
    target = root.joinpath(*REL_GENERATION.split("/"))
    tmp = target.with_name(f".{target.name}.tmp")
    data = json.dumps({"generation": gen.number, "reset_at": gen.reset_at, "by": gen.by}) + "\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
    os.replace(tmp, target)


def _archive_dir(path: Path) -> Path:
    folder = archive_folder(path)
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise InputError.of("sandbox.archive_failed", "sandbox.archive_failed.fix", path=str(folder),
                            reason=exc.strerror or str(exc)) from None
    if folder.is_symlink() or not folder.is_dir():
        raise InputError.of("sandbox.archive_symlink", "sandbox.archive_symlink.fix", path=str(folder))
    return folder


def _unique(folder: Path, stamp: str) -> Path:
    candidate = folder / stamp
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = folder / f"{stamp}-{n}"
    return candidate


def _reset_journal(target: Path) -> Path:
    return target.parent / f".{target.name}.reset.json"


def _reset_lock(target: Path) -> Path:
    return target.parent / f".{target.name}.reset.lock"


@contextmanager
def _reset_locked(target: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the lock of the resets of *target* (a file beside it); yields
    whether it was taken (without *wait*, ``False`` when a reset is running)."""
    fd = os.open(_reset_lock(target), os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if fcntl is None:  # pragma: no cover - Windows: no concurrent resets to fear there
            yield True
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _write_reset_journal(target: Path, doc: Mapping[str, Any]) -> None:
    journal = _reset_journal(target)
    tmp = journal.with_name(journal.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(json.dumps(dict(doc)).encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, journal)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_reset_journal(target: Path) -> dict[str, Any] | None:
    """The reset journal, checked: it may only name a fresh folder beside
    *target* and an archive folder in :func:`archive_folder` (``None`` when
    missing, damaged or naming anything else)."""
    try:
        doc = bounded_loads(read_regular(_reset_journal(target), 64 * 1024, follow_symlinks=False),
                            name=_reset_journal(target).name, max_bytes=64 * 1024, max_depth=4)
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("state") not in ("prepare", "commit"):
        return None
    fresh, dest = doc.get("fresh"), doc.get("dest")
    if not (isinstance(fresh, str) and _FRESH.fullmatch(fresh)):
        return None
    if doc["state"] == "commit" and not (isinstance(dest, str) and _DEST.fullmatch(dest)):
        return None
    return doc


def _complete_fresh(path: Path) -> bool:
    """Whether *path* is a finished fresh sandbox (its generation written last)."""
    return (not path.is_symlink() and path.is_dir() and _is_regular(path.joinpath(*SANDBOX_MARKER.split("/")))
            and _is_regular(path.joinpath(*REL_GENERATION.split("/"))) and generation(path).number > 0)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def recover_reset(path: str | os.PathLike[str], *, journaled_only: bool = False) -> bool:
    """Complete or undo a reset of the sandbox at *path* that was killed half-way.

    Cheap when there is nothing to do.  A reset is journaled beside the
    sandbox (``.NAME.reset.json``): killed before the fresh sandbox was
    finished, the half-built ``.sandbox-new-*`` folder is removed (the old
    sandbox is still in place); killed after, the renames are done (the old
    sandbox to the archive, the fresh one into place), so the generation
    it counted is kept.  Leftover fresh folders of earlier versions, which
    had no journal, are removed too (not with *journaled_only*, which only
    looks for the journal: for a MailRoot that may not be a sandbox at all).
    Returns whether anything was done.
    Never raises (a failure is logged, the next command tries again).
    """
    target = Path(os.path.abspath(path))
    parent = target.parent
    try:
        journal = _reset_journal(target)
        journal_there = os.path.lexists(journal) or os.path.lexists(journal.with_name(journal.name + ".tmp"))
        if journaled_only and not journal_there:
            return False
        leftovers = [n for n in os.listdir(parent) if n.startswith(_FRESH_PREFIX)] if parent.is_dir() else []
    except OSError:
        return False
    if not journal_there and not leftovers:
        return False
    try:
        with _reset_locked(target, wait=False) as taken:
            if not taken:
                return False  # a reset is running: it is not ours to repair
            return _recover_reset_locked(target)
    except (OSError, XmailnbError) as exc:
        log.info("could not repair the reset of %s: %s", target, exc)
        return False


def _recover_reset_locked(target: Path) -> bool:
    parent = target.parent
    doc = _read_reset_journal(target)
    if doc is not None and doc["state"] == "commit":
        fresh = parent / doc["fresh"]
        if _complete_fresh(fresh):
            if os.path.lexists(target):
                check_sandbox(target)  # only ever a sandbox goes to the archive
                with Store(MailRoot(target, is_sandbox=True)).lock():
                    dest = _unique(_archive_dir(target), doc["dest"].rpartition("/")[2])
                    os.rename(target, dest)
            os.rename(fresh, target)
            _fsync_dir(parent)
            log.info("completed an interrupted reset of %s", target)
    # Anything else (prepare, damaged, done): the old sandbox is in place
    # or the fresh one is; what is left is a half-built folder and the journal.
    for name in os.listdir(parent):
        if name.startswith(_FRESH_PREFIX) and _FRESH.fullmatch(name):
            shutil.rmtree(parent / name, ignore_errors=True)
    for leftover in (_reset_journal(target), _reset_journal(target).with_name(_reset_journal(target).name + ".tmp")):
        try:
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
        except FileNotFoundError:
            pass
    _fsync_dir(parent)
    return True


def reset_sandbox(path: str | os.PathLike[str] | None = None, *, by: str = "self",
                  environ: Mapping[str, str] | None = None) -> ResetResult:
    """Give the practice sandbox a fresh start.

    Args:
        path: the sandbox folder; default: :func:`xmailnb.mailroot.layout.sandbox_path`
            (``XMAILNB_DATA_DIR/sandbox-MailRoot``).
        by: who asked (recorded in the generation: ``"self"`` or ``"trainer"``).
        environ: environment for the default path (default ``os.environ``).

    Returns:
        the fresh sandbox, where the old one went, and the new generation.

    Raises:
        InputError: *path* is not a sandbox (a live MailRoot, a link, a
            file): nothing changed.
        BusyError: another writer holds the sandbox's lock: try again.

    A reset is journaled like a change of the store (see :func:`recover_reset`):
    killed at any step, the next command completes or undoes it.

    >>> import tempfile, pathlib
    >>> from xmailnb.mailroot.sandbox import create_sandbox
    >>> box = create_sandbox(pathlib.Path(tempfile.mkdtemp()) / "sandbox-MailRoot")
    >>> reset_sandbox(box.path).generation.number
    1
    """
    target = Path(path) if path is not None else sandbox_path(environ)
    target = Path(os.path.abspath(target))
    recover_reset(target)
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
    if not os.path.lexists(target):
        # Nothing to start over from: a first sandbox is a fresh start too.
        mr = create_sandbox(target)
        gen = Generation(generation(target).number + 1, clock.now().isoformat(timespec="seconds"), by)
        _write_generation(target, gen)
        return ResetResult(mr, None, gen)
    check_sandbox(target)
    old = MailRoot(target, is_sandbox=True)
    with _reset_locked(target, wait=True), Store(old).lock():
        check_sandbox(target)  # again, under the lock: nothing swapped it meanwhile
        gen = Generation(generation(target).number + 1, clock.now().isoformat(timespec="seconds"), by)
        archive = _archive_dir(target)
        fresh = target.parent / f"{_FRESH_PREFIX}{os.urandom(6).hex()}"
        _write_reset_journal(target, {"state": "prepare", "fresh": fresh.name})
        try:
            fresh.mkdir(mode=0o700)
            create_sandbox(fresh)
            _write_generation(fresh, gen)
            dest = _unique(archive, stamp)
            _write_reset_journal(target, {"state": "commit", "fresh": fresh.name,
                                          "dest": f"{ARCHIVE_DIRNAME}/{dest.name}"})
        except BaseException:
            shutil.rmtree(fresh, ignore_errors=True)
            _reset_journal(target).unlink()
            raise
        os.rename(target, dest)
        try:
            os.rename(fresh, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                os.rename(dest, target)  # put the old one back: nothing changed
                shutil.rmtree(fresh, ignore_errors=True)
                _reset_journal(target).unlink()
                raise
            # Another process created a sandbox in the moment between the
            # two renames (resolve() does on first use): keep it too.
            os.rename(target, _unique(archive, stamp + "-concurrent"))
            os.rename(fresh, target)
        _fsync_dir(target.parent)
        _reset_journal(target).unlink()
        _fsync_dir(target.parent)
    log.info("sandbox %s reset (generation %d, by %s); old one in %s", target, gen.number, by, dest)
    return ResetResult(MailRoot(target, is_sandbox=True), dest, gen)


def practice_ports(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """The practice listener's ports this user was given, else 0 (any free port).

    A classroom gives every trainee their own ports in
    ``XMAILNB_PRACTICE_PORTS`` (``smtp=PORT,pop3s=PORT``), so that trainees
    sharing one machine never collide and a firewall can be opened for them.
    Unusable values are ignored (0).
    """
    env = os.environ if environ is None else environ
    ports = {"smtp": 0, "pop3s": 0}
    for item in env.get("XMAILNB_PRACTICE_PORTS", "").split(","):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if name in ports and value.strip().isdigit() and 0 < int(value) < 65536:
            ports[name] = int(value)
    return ports


def suggested_practice_ports(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """Ports to offer for the practice listener: this user's own
    (:func:`practice_ports`, a classroom gives each trainee theirs), else
    ports that are free on 127.0.0.1 right now, so the page can show them
    before the listener starts (the trainee may choose others)."""
    ports = practice_ports(environ)
    held: list[socket.socket] = []
    try:
        for name, port in ports.items():
            if port:
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)  # kept open until all are chosen: two different ports
            sock.bind(("127.0.0.1", 0))
            ports[name] = sock.getsockname()[1]
    except OSError:
        return practice_ports(environ)  # no free port now: the listener picks one itself
    finally:
        for sock in held:
            sock.close()
    return ports

"""The one place that changes a MailRoot: lock, archive, journal, atomic replace, audit.

Every change is a :meth:`Store.transaction`: under an exclusive per-MailRoot
lock the caller reads the files it bases its change on and says what the
new contents are; the store then

1. writes an intent record, the *journal* (``sslconf/.xmailnb-journal.json``,
   state ``prepare``), naming the archive entry and each file's old and new
   SHA-256;
2. archives the current versions (built as ``archive/.ID.partial``, then
   renamed to ``archive/ID``);
3. stages every new file beside its target (``.NAME.ID.xmailnb-tmp``,
   fsynced, with its final mode and owner);
4. marks the journal ``commit`` — from here on the change is decided;
5. renames the staged files into place, fsyncs the folders, removes the
   journal and appends a line to the audit log.

A process killed at any instruction leaves the journal behind; the next
xmailnb command of any kind (:func:`xmailnb.mailroot.layout.recover_interrupted`)
takes the lock, and completes a committed change from the staged files or
undoes an uncommitted one, then removes every leftover.  The journal is
never trusted: it must be exactly what the store writes (a random token ties
it to the archive entry it made; modes and owners come from the store's
rules, not from it).  One that cannot be used is moved aside into
``archive/set-aside/`` and the MailRoot repaired from what is on disk
(staged files, the newest archive entry, whether server.cert and server.key
belong together).  History is ordered by a sequence number the store gives
each entry (``archive/.order/SEQ-ID``), never by the clock.  Recovery is
idempotent: killed itself, it is simply done again.  So server.cert and
server.key are never seen half-replaced once any command has run.  An error
(not a kill) half-way puts the previous files back at once.

Every path is confined to the MailRoot: only the files of
:data:`xmailnb.mailroot.layout.MANAGED_FILES` are written or restored (an archive
manifest naming anything else is refused as tampered), and no symbolic link
is followed for any folder the store creates or writes into, nor for the
files it replaces: each folder is opened relative to its parent with
``O_NOFOLLOW`` and every operation is made relative to that open folder.

Run as root on a MailRoot that belongs to the XMail service account, the
store gives new files the owner of the file they replace (else of the
MailRoot folder), and the same for the folders, the archive and the lock
file it creates, so that XMail can still read its key.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import re
import select
import shutil
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from .. import clock
from ..boundedjson import loads as bounded_loads
from ..errors import BusyError, InputError, XmailnbError
from ..files import NotRegularFile, read_regular, sha256_hex
from ..i18n import Msg
from ..logs import log_unexpected
from .layout import JOURNAL_NAME, MANAGED_FOLDERS, MailRoot, is_managed, read_problem

__all__ = ["Action", "ArchiveEntry", "AuditRecord", "Store", "StoreError", "Transaction", "sha256_hex", "is_key_file",
           "BOOKKEEPING_ACTIONS", "LOCK_WAIT", "committed_entries"]


if os.name == "posix":  # flock(); Windows locks through filelock instead
    import fcntl

log = logging.getLogger(__name__)

# Actions that record the product's own progress (checklist ticks, ACME
# account and status, the workbook's settings) rather than the mail server's configuration: archived
# like everything else, but a plain rollback steps over them.
class Action(StrEnum):
    """What a transaction did: the ``action`` of its archive entry and audit
    record (an entry read from disk keeps any other name as a plain string)."""

    CSR = "csr"
    INSTALL = "install"
    SETTINGS = "settings"
    ROLLBACK = "rollback"
    CHECKLIST = "checklist"
    ACME = "acme"
    PRACTICE_CA = "practice-ca"
    WORKBOOK = "workbook"


BOOKKEEPING_ACTIONS = frozenset({Action.CHECKLIST, Action.ACME, Action.WORKBOOK})

KEY_MODE = 0o600
DIR_MODE = 0o700
DEFAULT_MODE = 0o644
MANIFEST = "manifest.json"
LOCK_NAME = ".xmailnb.lock"
TMP_SUFFIX = ".xmailnb-tmp"
PARTIAL_SUFFIX = ".partial"
JOURNAL_TMP = JOURNAL_NAME + ".tmp"

#: Seconds a writer waits for another one to finish before it says "busy".
#: Concurrent admins then simply queue; ``XMAILNB_LOCK_WAIT`` overrides it.
LOCK_WAIT = 10.0

#: The largest file the store reads (server.tab, certs.pem, archive copies).
READ_LIMIT = 16 * 1024 * 1024
#: The largest journal and manifest: a change names a handful of files.
JOURNAL_LIMIT = 256 * 1024
MANIFEST_LIMIT = 1024 * 1024
#: Where an unusable journal is moved (inside the private archive folder).
SET_ASIDE = "set-aside"
#: In the archive: one empty file ``SEQ-ID`` per entry, its place in the history.
ORDER_DIR = ".order"

_ID = re.compile(r"[0-9]{8}T[0-9]{12}Z")
_TOKEN = re.compile(r"[0-9a-f]{32}")
_MARK = re.compile(r"(?P<seq>[0-9]{1,18})-(?P<id>[0-9]{8}T[0-9]{12}Z)")
# A staged new version: ``.NAME.ID.xmailnb-tmp`` (an undo's has ``.undo`` before the suffix).
_STAGED = re.compile(r"\.(?P<name>[^/]+)\.(?P<id>[0-9]{8}T[0-9]{12}Z)\.xmailnb-tmp")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# Folder descriptors (openat/renameat/...) make every step relative to a
# folder opened without following links.  Windows has none: there the same
# checks are made on paths with lstat.
_DIR_FDS = (os.name == "posix" and os.open in os.supports_dir_fd and os.rename in os.supports_dir_fd
            and os.mkdir in os.supports_dir_fd and os.unlink in os.supports_dir_fd)

# Seams for fault-injection tests: each step of a write goes through one of
# these, so a test can make exactly that step fail (or kill the process there).
_fsync = os.fsync
_replace = os.replace
_create = os.open
_unlink = os.unlink
_mkdir = os.mkdir


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _pause(seconds: float) -> None:
    """Sleep *seconds* of real time.  select() takes a relative timeout,
    where time.sleep() computes an absolute deadline from the monotonic
    clock, which a faked clock (faketime, as ``make test-future`` uses) can
    move so that the sleep returns at once."""
    if os.name == "posix":
        select.select([], [], [], seconds)
    else:
        time.sleep(seconds)


def _flock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class StoreError(XmailnbError):
    """A write failed or was refused; the MailRoot was left as it was (exit 1)."""

    exit_code = 1


class UnsafePath(StoreError):
    """A folder or file on the way is a symbolic link or not what it should be."""


def is_key_file(rel: str) -> bool:
    return rel.endswith(".key")


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or type(exc).__name__)


def _names(rels: Iterable[str]) -> str:
    """File names for the log: "a, b", or "none"."""
    return ", ".join(sorted(rels)) or "none"


def _digest(data: bytes | None) -> str | None:
    return None if data is None else sha256_hex(data)


# Every archive entry written by this process (for the command line: a
# failure to print after a change must not read as "nothing was changed").
_COMMITTED: list["ArchiveEntry"] = []


def committed_entries(since: int = 0) -> list["ArchiveEntry"]:
    """Archive entries of the changes this process made, oldest first."""
    return list(_COMMITTED[since:])


@dataclass(frozen=True)
class ArchiveEntry:
    """One archived state: the versions of *files* just before *action*.

    ``files`` maps each relative name to the SHA-256 of the archived version,
    or ``None`` when the file did not exist then (restoring removes it).
    """

    id: str
    time: str
    action: str
    files: Mapping[str, str | None]
    details: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: The place of this change in the MailRoot's history, assigned by the
    #: store (1, 2, ...); ``None`` for entries made before sequences existed.
    #: History is ordered by it, never by :attr:`time` (a clock may be wrong).
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time, "action": self.action, "seq": self.seq,
                "files": dict(self.files), "details": dict(self.details)}

    def order(self) -> tuple[int, int, str]:
        """Sort key, oldest first: by sequence; entries without one (made by
        earlier versions, before any with one) by their id."""
        return (1, self.seq, "") if self.seq is not None else (0, 0, self.id)


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit log (``sslconf/audit.log``): what a change did.

    ``files`` maps each relative name the change wrote to the SHA-256 of its
    version ``before`` and ``after`` (``None``: absent); ``archive`` is the
    id of the archive entry that holds the versions before, if any.
    """

    time: str
    action: str
    result: str
    archive: str | None = None
    files: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def when(self) -> dt.datetime | None:
        """:attr:`time` as an aware time (UTC when it names no zone); ``None`` if unreadable."""
        try:
            when = dt.datetime.fromisoformat(self.time)
        except ValueError:
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)

    def to_json(self) -> dict[str, Any]:
        """The line's JSON object, as written (``error`` only when there is one)."""
        doc: dict[str, Any] = {"time": self.time, "action": self.action, "result": self.result,
                               "archive": self.archive,
                               "files": {rel: dict(change) for rel, change in self.files.items()},
                               "details": dict(self.details)}
        if self.error:
            doc["error"] = self.error
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> AuditRecord | None:
        """The record of a line's JSON object, or ``None`` when it is not one
        (a line cut short, written by hand)."""
        if not isinstance(doc, dict) or not isinstance(doc.get("action"), str):
            return None
        files_in = doc.get("files")
        files = {str(rel): {str(k): v if isinstance(v, str) else None for k, v in change.items()}
                 for rel, change in (files_in.items() if isinstance(files_in, dict) else ())
                 if isinstance(change, dict)}
        details = doc.get("details")
        archive, error = doc.get("archive"), doc.get("error")
        return cls(time=str(doc.get("time", "")), action=doc["action"], result=str(doc.get("result", "")),
                   archive=archive if isinstance(archive, str) else None, files=files,
                   details=details if isinstance(details, dict) else {},
                   error=error if isinstance(error, str) else None)


# -- folders reached without following links ------------------------------------------

class _Dir:
    """An open folder inside the MailRoot, reached without following links.

    *rel* is its name relative to the MailRoot (for messages).  On POSIX it
    holds a descriptor and every operation is relative to it; elsewhere the
    path, checked with lstat.
    """

    def __init__(self, path: Path, rel: str, fd: int | None) -> None:
        self.path, self.rel, self.fd = path, rel, fd

    @classmethod
    def root(cls, path: Path) -> "_Dir":
        if not _DIR_FDS:
            return cls(path, "", None)
        return cls(path, "", os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "_Dir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def name_of(self, name: str) -> str:
        return f"{self.rel}/{name}" if self.rel else name

    def _p(self, name: str) -> str:
        return name if self.fd is not None else os.path.join(self.path, name)

    def _kw(self) -> dict[str, Any]:
        return {"dir_fd": self.fd} if self.fd is not None else {}

    def lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(self._p(name), follow_symlinks=False, **self._kw())
        except FileNotFoundError:
            return None

    def fstat(self) -> os.stat_result:
        return os.fstat(self.fd) if self.fd is not None else os.stat(self.path, follow_symlinks=False)

    def child(self, name: str, *, create: bool = False,
              owner: tuple[int, int] | None = None) -> "_Dir":
        """The sub-folder *name*; created (0700, *owner*) when missing and *create*.

        Raises:
            UnsafePath: it is a symbolic link or not a folder.
            FileNotFoundError: missing and not *create*.
        """
        rel = self.name_of(name)
        st = self.lstat(name)
        if st is None:
            if not create:
                raise FileNotFoundError(errno.ENOENT, "missing", rel)
            try:
                _mkdir(self._p(name), DIR_MODE, **self._kw())
            except FileExistsError:
                pass
            else:
                if owner is not None:
                    self.chown(name, owner)
                self.fsync()
            st = self.lstat(name)
            if st is None:
                raise FileNotFoundError(errno.ENOENT, "missing", rel)
        if stat.S_ISLNK(st.st_mode):
            raise _unsafe(rel, "symlink")
        if not stat.S_ISDIR(st.st_mode):
            raise _unsafe(rel, "not_dir")
        if self.fd is None:
            return _Dir(self.path / name, rel, None)
        try:
            fd = os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                # Swapped for a link between the lstat and the open.
                raise _unsafe(rel, "symlink") from None
            raise
        return _Dir(self.path / name, rel, fd)

    def walk(self, parts: list[str], *, create: bool = False,
             owner: tuple[int, int] | None = None) -> "_Dir":
        """The folder reached through *parts* (each opened as :meth:`child`)."""
        current = self
        opened: list[_Dir] = []
        try:
            for part in parts:
                current = current.child(part, create=create, owner=owner)
                opened.append(current)
        except BaseException:
            for d in opened:
                d.close()
            raise
        for d in opened[:-1]:
            d.close()
        return current if opened else _Dir(self.path, self.rel, os.dup(self.fd) if self.fd is not None else None)

    def read(self, name: str, limit: int = READ_LIMIT) -> bytes | None:
        """The regular file *name* (a link is refused, not followed), or ``None``."""
        try:
            if self.fd is not None:
                return read_regular(name, limit, dir_fd=self.fd, follow_symlinks=False)
            st = self.lstat(name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise NotRegularFile(self._p(name), "symlink")
            return read_regular(self._p(name), limit)
        except FileNotFoundError:
            return None

    def create(self, name: str, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
        """Write a new file *name* (it must not exist) and fsync it."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | getattr(os, "O_BINARY", 0)
        fd = _create(self._p(name), flags, mode, **self._kw())
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # the umask must not widen or narrow it
            if owner is not None and hasattr(os, "fchown"):
                os.fchown(fd, *owner)
                os.fchmod(fd, mode)  # chown clears set-id bits; keep the mode exact
            _write(fd, data)
            _fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        if self.fd is not None:
            _replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        else:
            _replace(self._p(src), self._p(dst))

    def unlink(self, name: str) -> bool:
        try:
            _unlink(self._p(name), **self._kw())
        except FileNotFoundError:
            return False
        return True

    def rmtree(self, name: str) -> None:
        st = self.lstat(name)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            self.unlink(name)
            return
        if self.fd is not None:
            shutil.rmtree(name, dir_fd=self.fd)
        else:
            shutil.rmtree(self._p(name))

    def names(self) -> list[str]:
        if self.fd is not None:
            return os.listdir(self.fd)
        return os.listdir(self.path)

    def chown(self, name: str, owner: tuple[int, int]) -> None:
        if hasattr(os, "chown"):
            os.chown(self._p(name), *owner, follow_symlinks=False, **self._kw())

    def fsync(self) -> None:
        # Directory fsync makes a rename durable on POSIX; Windows has no
        # such call (and NTFS journals the rename).
        if os.name != "posix":
            return
        if self.fd is not None:
            _fsync(self.fd)
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            _fsync(fd)
        finally:
            os.close(fd)

    def writable(self) -> bool:
        kw: dict[str, Any] = {}
        if os.access in os.supports_effective_ids:
            kw["effective_ids"] = True
        if self.fd is not None and os.access in os.supports_dir_fd:
            return os.access(".", os.W_OK | os.X_OK, dir_fd=self.fd, **kw)
        return os.access(self.path, os.W_OK | os.X_OK, **kw)


def _unsafe(rel: str, why: str) -> UnsafePath:
    key = "store.unsafe.symlink" if why == "symlink" else "store.unsafe.not_dir"
    return UnsafePath.of(key, f"{key}.fix", path=rel)  # type: ignore[return-value]


def _file_refused(rel: str, exc: OSError) -> StoreError:
    if isinstance(exc, NotRegularFile) and exc.kind == "symlink":
        return StoreError.of("store.file.symlink", "store.file.symlink.fix", name=rel)  # type: ignore[return-value]
    return StoreError(read_problem(rel, exc), Msg.of("store.file.refused.fix", name=rel))


def _split(rel: str) -> tuple[list[str], str]:
    parts = rel.split("/")
    return parts[:-1], parts[-1]


def _tmp_name(name: str, entry_id: str, tag: str = "") -> str:
    return f".{name}.{entry_id}{tag}{TMP_SUFFIX}"


class _Tampered(Exception):
    """A manifest or journal names something the store never writes."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _check_files(files: Any) -> dict[str, str | None]:
    if not isinstance(files, dict):
        raise _Tampered("files")
    out: dict[str, str | None] = {}
    for rel, digest in files.items():
        if not is_managed(rel):
            raise _Tampered(str(rel))
        if digest is not None and not (isinstance(digest, str) and _DIGEST.fullmatch(digest)):
            raise _Tampered(str(rel))
        out[rel] = digest
    return out


# -- the transaction -------------------------------------------------------------------------

class Transaction:
    """A change under the MailRoot's lock: read the base, say the new contents.

    Obtained from :meth:`Store.transaction`; everything read with
    :meth:`read` is read under the lock, so no other writer can change it
    before the new contents are written.  Nothing is written until the
    ``with`` block ends without an exception.

    Attributes:
        details: facts for the archive and the audit log (add to it freely;
            never key material).
        entry: after the block, the archive entry of the previous versions,
            or ``None`` when nothing changed.
    """

    def __init__(self, store: "Store", action: Action, details: dict[str, Any]) -> None:
        self.store = store
        self.action = action
        self.details = details
        self.entry: ArchiveEntry | None = None
        self._base: dict[str, bytes | None] = {}
        self._writes: dict[str, bytes | None] = {}

    def read(self, rel: str) -> bytes | None:
        """The current contents of *rel* (``None``: no such file), or what
        this transaction already wrote to it.

        Raises:
            StoreError: it is a link, a folder, a FIFO, a device, too large
                or unreadable (named in the message).
        """
        if rel in self._writes:
            return self._writes[rel]
        if rel not in self._base:
            self._base[rel] = self.store._read_current(rel)
        return self._base[rel]

    def write(self, rel: str, data: bytes | None) -> None:
        """Replace *rel* with *data* (``None``: remove it) when the block ends."""
        self.store._check_rel(rel)
        if data is not None and not isinstance(data, (bytes, bytearray)):
            raise TypeError("file contents must be bytes")
        self._writes[rel] = None if data is None else bytes(data)

    def archive(self, entry_id: str | None) -> ArchiveEntry:
        """An archived state, read under the lock (``None``: the newest change)."""
        return self.store.entry(entry_id)


class _Session:
    """The open MailRoot, sslconf and lock while the lock is held."""

    def __init__(self, root: _Dir, sslconf: _Dir | None, owner: tuple[int, int] | None) -> None:
        self.root, self.owner = root, owner
        self._dirs: dict[str, _Dir] = {"": root}
        if sslconf is not None:
            self._dirs["sslconf"] = sslconf

    @property
    def sslconf(self) -> _Dir:
        return self._dirs["sslconf"]

    def folder(self, rel_folder: str, *, create: bool = False) -> _Dir:
        found = self._dirs.get(rel_folder)
        if found is not None:
            return found
        parent_rel, _, name = rel_folder.rpartition("/")
        parent = self.folder(parent_rel, create=create)
        d = parent.child(name, create=create, owner=self.owner)
        self._dirs[rel_folder] = d
        return d

    def existing(self, rel_folder: str) -> _Dir | None:
        try:
            return self.folder(rel_folder)
        except FileNotFoundError:
            return None

    def close(self) -> None:
        for d in self._dirs.values():
            d.close()


class Store:
    """Serialised, journaled, archived, atomic writes to one MailRoot."""

    def __init__(self, mailroot: MailRoot, *, wait: float | None = None) -> None:
        self.mailroot = mailroot
        self.wait = wait

    # -- locking -----------------------------------------------------------
    def _wait_seconds(self) -> float:
        if self.wait is not None:
            return self.wait
        forced = os.environ.get("XMAILNB_LOCK_WAIT")
        if forced:
            try:
                return max(0.0, float(forced))
            except ValueError:
                pass
        return LOCK_WAIT

    def _refused(self, exc: OSError, where: str) -> StoreError:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return StoreError.of("store.readonly", "store.readonly.fix", path=str(self.mailroot.path),  # type: ignore[return-value]
                                 folder=str(self.mailroot.file(where) if where else self.mailroot.path),
                                 reason=_reason(exc))
        return StoreError.of("store.lock_failed", "store.lock_failed.fix", path=str(self.mailroot.path),  # type: ignore[return-value]
                             reason=_reason(exc))

    @contextmanager
    def _session(self, wait: float | None = None) -> Iterator[_Session]:
        """Hold the MailRoot's exclusive lock; yield its open folders.

        flock()/LockFileEx are released by the OS when the process dies, so
        a killed writer never leaves a stale lock (its journal, if any, is
        found by the next one).

        Raises:
            BusyError: another writer kept the lock for *wait* seconds.
            StoreError: the MailRoot cannot be locked (read-only, ...).
        """
        try:
            root = _Dir.root(self.mailroot.path)
        except OSError as exc:
            raise self._refused(exc, "") from None
        try:
            st = root.fstat()
            owner = (st.st_uid, st.st_gid) if _is_root() else None
            try:
                sslconf = root.child("sslconf", create=True, owner=owner)
            except OSError as exc:
                raise self._refused(exc, "sslconf") from None
            session = _Session(root, sslconf, owner)
            seconds = self._wait_seconds() if wait is None else wait
            try:
                if not _DIR_FDS:
                    with self._filelock(seconds):
                        yield session
                    return
                fd = self._open_lock(sslconf, owner)
                try:
                    self._acquire(fd, seconds)
                    yield session
                finally:
                    os.close(fd)  # closing releases the lock
            finally:
                session.close()
        finally:
            root.close()

    @contextmanager
    def _filelock(self, wait: float) -> Iterator[None]:
        """Where there are no folder descriptors (Windows): LockFileEx."""
        import filelock  # Windows only: every POSIX run would pay for the import

        lock = filelock.FileLock(str(self.mailroot.lock_path), timeout=wait)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise BusyError.of("store.busy", "store.busy.fix", path=str(self.mailroot.path)) from None
        except OSError as exc:
            raise self._refused(exc, "sslconf") from None
        try:
            yield
        finally:
            lock.release()

    def _open_lock(self, sslconf: _Dir, owner: tuple[int, int] | None) -> int:
        flags = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC
        try:
            before = sslconf.lstat(LOCK_NAME)
            fd = os.open(LOCK_NAME, flags, KEY_MODE, dir_fd=sslconf.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _unsafe(sslconf.name_of(LOCK_NAME), "symlink") from None
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                # A read-only tree can still be locked (flock needs no write
                # access): the write itself is then refused with a clear message.
                try:
                    return os.open(LOCK_NAME, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=sslconf.fd)
                except OSError:
                    pass
            raise self._refused(exc, "sslconf") from None
        if owner is not None:
            # The MailRoot's owner (XMail's account) must be able to take
            # the lock too, also after root made the file.
            st = os.fstat(fd)
            if before is None or (st.st_uid, st.st_gid) != owner:
                try:
                    os.fchown(fd, *owner)
                except OSError:
                    pass
        return fd

    def _acquire(self, fd: int, wait: float) -> None:
        # The time waited is counted from the sleeps, not read from a clock:
        # a faked or jumping clock (faketime, a VM resumed) must not turn a
        # short wait into an error or an endless one.
        waited = 0.0
        delay = 0.02
        while True:
            try:
                _flock(fd)
                return
            except BlockingIOError:
                if waited >= wait:
                    raise BusyError.of("store.busy", "store.busy.fix", path=str(self.mailroot.path)) from None
                step = min(delay, wait - waited)
                _pause(step)
                waited += step
                delay = min(delay * 1.5, 0.25)
            except OSError as exc:
                raise StoreError.of("store.lock_failed", "store.lock_failed.fix", path=str(self.mailroot.path),
                                    reason=_reason(exc)) from None

    @contextmanager
    def lock(self, wait: float | None = None) -> Iterator[None]:
        """Hold the MailRoot's exclusive lock, or raise :class:`BusyError`
        after *wait* seconds (default :data:`LOCK_WAIT`)."""
        with self._session(wait):
            yield

    # -- paths ---------------------------------------------------------------------
    def _check_rel(self, rel: str) -> None:
        if not is_managed(rel):
            raise StoreError.of("store.path.refused", "store.path.refused.fix", name=str(rel))

    def _read_current(self, rel: str) -> bytes | None:
        self._check_rel(rel)
        session = self._active
        if session is None:
            raise RuntimeError("read outside a transaction")
        folder, name = _split(rel)
        d = session.existing("/".join(folder))
        if d is None:
            return None
        try:
            return d.read(name)
        except OSError as exc:
            raise _file_refused(rel, exc) from None

    _active: _Session | None = None

    # -- archive -------------------------------------------------------------
    def _new_id(self, archive: _Dir) -> tuple[str, dt.datetime]:
        when = clock.now()
        while True:
            entry_id = when.strftime("%Y%m%dT%H%M%S%fZ")
            if archive.lstat(entry_id) is None and archive.lstat(f".{entry_id}{PARTIAL_SUFFIX}") is None:
                return entry_id, when
            when += dt.timedelta(microseconds=1)

    def _write_entry(self, session: _Session, archive: _Dir, entry_id: str, when: dt.datetime,
                     action: str, current: Mapping[str, bytes | None],
                     details: Mapping[str, Any], seq: int, token: str) -> ArchiveEntry:
        owner = session.owner
        # Built under a temp name and renamed, so a half-written entry never
        # shows up in the history.
        staging = f".{entry_id}{PARTIAL_SUFFIX}"
        files: dict[str, str | None] = {}
        with archive.child(staging, create=True, owner=owner) as entry_dir:
            with entry_dir.child("files", create=True, owner=owner) as files_dir:
                for rel, data in current.items():
                    if data is None:
                        files[rel] = None
                        continue
                    folder, name = _split(rel)
                    with files_dir.walk(folder, create=True, owner=owner) as d:
                        d.create(name, data, KEY_MODE, owner)
                        d.fsync()
                    files[rel] = sha256_hex(data)
                files_dir.fsync()
            entry = ArchiveEntry(id=entry_id, time=when.isoformat(timespec="microseconds"),
                                 action=action, files=files, details=dict(details), seq=seq)
            # The token ties the entry to the journal of the change that made
            # it: only that journal may remove the entry again.
            manifest = {**entry.to_json(), "token": token}
            entry_dir.create(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode(),
                             KEY_MODE, owner)
            entry_dir.fsync()
        # The entry's place in the history, readable from one folder listing
        # (made before the entry appears; a mark without an entry is ignored).
        with archive.child(ORDER_DIR, create=True, owner=owner) as order:
            order.create(f"{seq}-{entry_id}", b"", KEY_MODE, owner)
            order.fsync()
        archive.rename(staging, entry_id)
        archive.fsync()
        return ArchiveEntry(id=entry.id, time=entry.time, action=action, files=files,
                            details=entry.details, path=self.mailroot.archive_dir / entry_id, seq=seq)

    @staticmethod
    def _names_in(archive: _Dir) -> list[str]:
        """Archive entry folder names (in no particular order: see :meth:`_ordered`)."""
        return sorted(n for n in archive.names() if _ID.fullmatch(n))

    def _marks(self, archive: _Dir) -> dict[str, int]:
        """id -> sequence number, from the names in ``archive/.order``
        (0: an entry without one; -1: two marks disagree)."""
        try:
            with archive.child(ORDER_DIR) as order:
                names = order.names()
        except (OSError, XmailnbError):
            return {}
        out: dict[str, int] = {}
        for name in names:
            m = _MARK.fullmatch(name)
            if m is None:
                continue
            seq = int(m["seq"])
            out[m["id"]] = seq if out.get(m["id"], seq) == seq else -1
        return out

    def _ordered(self, archive: _Dir, limit: int | None = None,
                 keep: Callable[[ArchiveEntry], bool] | None = None) -> list[ArchiveEntry]:
        """Readable archive entries, newest change first (at most *limit*
        of those *keep* accepts).

        Ordered by the sequence number the store gave each entry, never by
        the id or the time in it: both come from the clock, which may have
        been set back (an NTP correction, a wrong BIOS clock).  The marks in
        ``archive/.order`` say the order without reading every manifest;
        each manifest read must agree with its mark, else every manifest is
        read and decides.
        """
        marks = self._marks(archive)
        keyed: list[tuple[tuple[int, int, str], str]] = []
        loaded: dict[str, ArchiveEntry] = {}
        for name in self._names_in(archive):
            seq = marks.get(name)
            if seq is None or seq < 0:
                found = self._load_entry(archive, name)
                if found is None:
                    continue
                loaded[name] = found
                keyed.append((found.order(), name))
            else:
                keyed.append(((1, seq, "") if seq else (0, 0, name), name))
        keyed.sort(reverse=True)
        out: list[ArchiveEntry] = []
        for key, name in keyed:
            if limit is not None and len(out) >= limit:
                break
            entry = loaded.get(name) or self._load_entry(archive, name)
            if entry is None:
                continue
            if entry.order() != key:
                log.info("archive order marks disagree with manifest %s: reading every manifest", name)
                every = (self._load_entry(archive, n) for n in self._names_in(archive))
                ordered = sorted((e for e in every if e is not None), key=ArchiveEntry.order, reverse=True)
                ordered = [e for e in ordered if keep is None or keep(e)]
                return ordered if limit is None else ordered[:limit]
            if keep is None or keep(entry):
                out.append(entry)
        return out

    def _next_seq(self, archive: _Dir) -> int:
        """The sequence number of the next change: one more than any so far
        (kept in the manifests and the marks, so it survives restarts)."""
        marks = self._marks(archive)
        unmarked = [self._load_entry(archive, n) for n in self._names_in(archive) if marks.get(n, -1) < 0]
        return 1 + max([0, *marks.values(), *(e.seq or 0 for e in unmarked if e is not None)])

    def _drop_marks(self, archive: _Dir, entry_id: str) -> None:
        """Remove the order marks of *entry_id* (an entry that is gone), and
        the marks' folder when that leaves it empty."""
        try:
            order = archive.child(ORDER_DIR)
        except (FileNotFoundError, XmailnbError):
            return
        with order:
            for mark in order.names():
                m = _MARK.fullmatch(mark)
                if m is not None and m["id"] == entry_id:
                    order.unlink(mark)
            left = order.names()
        if not left:
            try:
                if archive.fd is not None:
                    os.rmdir(ORDER_DIR, dir_fd=archive.fd)
                else:
                    os.rmdir(os.path.join(archive.path, ORDER_DIR))
            except OSError:
                pass  # a mark made meanwhile: it stays

    def _mend_order(self, session: _Session) -> None:
        try:
            archive = session.existing("sslconf/archive")
            if archive is not None:
                self._mend_marks(archive, session.owner)
        except (OSError, XmailnbError) as exc:  # only speed is lost: the manifests decide
            log.info("could not mend the archive order marks: %s", exc)

    def _mend_marks(self, archive: _Dir, owner: tuple[int, int] | None) -> None:
        """Under the lock: a mark for every entry without one (made by an
        earlier version, or killed in between), none for an entry that is gone."""
        names = set(self._names_in(archive))
        marks = self._marks(archive)
        missing = [n for n in names if marks.get(n, -1) < 0]
        try:
            order = archive.child(ORDER_DIR, create=bool(missing), owner=owner)
        except FileNotFoundError:
            return
        with order:
            for mark in order.names():
                m = _MARK.fullmatch(mark)
                if m is not None and (m["id"] not in names or marks.get(m["id"]) == -1):
                    order.unlink(mark)
            for name in missing:
                entry = self._load_entry(archive, name)
                if entry is not None:
                    order.create(f"{entry.seq or 0}-{name}", b"", KEY_MODE, owner)
            order.fsync()

    def _entry_names(self) -> list[str]:
        with self._reader() as session:
            archive = session.existing("sslconf/archive")
            return self._names_in(archive) if archive is not None else []

    @contextmanager
    def _reader(self) -> Iterator[_Session]:
        """The MailRoot's folders for reading, with or without the lock."""
        if self._active is not None:
            yield self._active
            return
        session = _Session(_Dir.root(self.mailroot.path), None, None)
        try:
            yield session
        finally:
            session.close()

    def count(self) -> int:
        """How many archived states there are (cheap: no manifest is read)."""
        try:
            return len(self._entry_names())
        except OSError:
            return 0

    def _manifest(self, archive: _Dir, name: str) -> dict[str, Any] | None:
        """The manifest of archive entry *name* (``None``: missing or unreadable)."""
        try:
            with archive.child(name) as d:
                data = d.read(MANIFEST, MANIFEST_LIMIT)
        except (OSError, XmailnbError):
            return None
        if data is None:
            return None
        try:
            raw = bounded_loads(data, name=f"sslconf/archive/{name}/{MANIFEST}", max_bytes=MANIFEST_LIMIT)
        except (ValueError, UnicodeDecodeError) as exc:  # damaged, too large or too deep: skipped
            log.info("ignoring the manifest of archive entry %s: %s", name, exc)
            return None
        return raw if isinstance(raw, dict) else None

    def _load_entry(self, archive: _Dir, name: str) -> ArchiveEntry | None:
        raw = self._manifest(archive, name)
        if raw is None:
            return None
        try:
            seq = raw.get("seq")
            if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < 2 ** 62:
                seq = None
            details = raw.get("details")
            return ArchiveEntry(id=name, time=str(raw["time"]), action=str(raw["action"]),
                                files=raw["files"] if isinstance(raw["files"], dict) else {},
                                details=details if isinstance(details, dict) else {},
                                path=self.mailroot.archive_dir / name, seq=seq)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _token_of(self, archive: _Dir, name: str) -> str | None:
        raw = self._manifest(archive, name)
        token = raw.get("token") if raw is not None else None
        return token if isinstance(token, str) and _TOKEN.fullmatch(token) else None

    def history(self, limit: int | None = None, *, bookkeeping: bool = True) -> list[ArchiveEntry]:
        """Archived states, newest change first; at most *limit* of them.

        The order is the store's sequence of changes, not the clock's.  Unreadable
        entries are skipped, and so are :data:`BOOKKEEPING_ACTIONS` entries
        unless *bookkeeping* is true.

        Raises:
            StoreError: the archive folder (or sslconf) is a symbolic link.
        """
        entries: list[ArchiveEntry] = []
        try:
            with self._reader() as session:
                archive = session.existing("sslconf/archive")
                if archive is not None:
                    keep = None if bookkeeping else (lambda e: e.action not in BOOKKEEPING_ACTIONS)
                    entries = self._ordered(archive, limit, keep)
        except OSError:
            return entries
        return entries

    def entry(self, entry_id: str | None) -> ArchiveEntry:
        if entry_id is None:
            # The newest change to the server's files, not a checklist tick.
            newest = self.history(limit=1, bookkeeping=False)
            if not newest:
                raise InputError.of("store.history.empty", "store.history.empty.fix")
            return newest[0]
        if not self._entry_names():
            raise InputError.of("store.history.empty", "store.history.empty.fix")
        if isinstance(entry_id, str) and _ID.fullmatch(entry_id):
            with self._reader() as session:
                archive = session.existing("sslconf/archive")
                found = self._load_entry(archive, entry_id) if archive is not None else None
            if found is not None:
                return found
        raise InputError.of("store.history.unknown", "store.history.unknown.fix", id=str(entry_id))

    def archived_bytes(self, entry: ArchiveEntry) -> dict[str, bytes | None]:
        """The archived contents of *entry*, checked against its manifest.

        Raises:
            InputError: the manifest names a file the product never writes
                (``store.archive.tampered``), or a copy does not match
                (``store.archive.corrupt``).
        """
        try:
            files = _check_files(dict(entry.files) if isinstance(entry.files, Mapping) else entry.files)
        except _Tampered as exc:
            raise InputError.of("store.archive.tampered", "store.archive.tampered.fix",
                                id=entry.id, name=exc.name) from None
        out: dict[str, bytes | None] = {}
        with self._reader() as session:
            archive = session.existing("sslconf/archive")
            if archive is None:
                raise InputError.of("store.history.unknown", "store.history.unknown.fix", id=entry.id)
            with archive.child(entry.id) as entry_dir:
                for rel, digest in files.items():
                    if digest is None:
                        out[rel] = None
                        continue
                    folder, name = _split(rel)
                    try:
                        with entry_dir.walk(["files", *folder]) as d:
                            data = d.read(name) or b""
                    except (OSError, XmailnbError):
                        data = b""
                    if sha256_hex(data) != digest:
                        raise InputError.of("store.archive.corrupt", "store.archive.corrupt.fix",
                                            id=entry.id, name=rel)
                    out[rel] = data
        return out

    # -- the one write path ----------------------------------------------------
    @contextmanager
    def transaction(self, action: Action, details: Mapping[str, Any] | None = None, *,
                    wait: float | None = None) -> Iterator[Transaction]:
        """A read-modify-write of the MailRoot under its lock.

        >>> with Store(mr).transaction(Action.SETTINGS) as tx:        # doctest: +SKIP
        ...     tab = ServerTab.parse(tx.read("server.tab"))
        ...     tx.write("server.tab", edited(tab))
        >>> tx.entry                                              # doctest: +SKIP

        The lock is taken first (waiting up to *wait* seconds for another
        writer), an interrupted earlier change is recovered, then the block
        runs; when it ends normally, the files it wrote are replaced as one
        unit (archive, journal, atomic renames).  An exception in the block
        changes nothing.

        Raises:
            BusyError: another writer kept the lock all along.
            StoreError: a write failed (the previous files are back) or was
                refused (read-only MailRoot, a link or a folder where a file
                should be, ...).
        """
        tx = Transaction(self, action, dict(details or {}))
        with self._session(wait) as session:
            self._active = session
            try:
                try:
                    self._recover_locked(session)
                except OSError as exc:
                    log.info("recovery of %s failed: %s", self.mailroot.path, exc)
                    raise StoreError.of("store.recovery_failed", "store.recovery_failed.fix",
                                        path=str(self.mailroot.path)) from None
                self._sweep(session)
                self._mend_order(session)
                yield tx
                tx.entry = self._commit(session, action, tx)
            finally:
                self._active = None

    def apply(self, action: Action, changes: Mapping[str, bytes | None], *,
              details: Mapping[str, Any] | None = None, wait: float | None = None) -> ArchiveEntry | None:
        """Replace (or, for ``None``, remove) the files in *changes* as one unit.

        Args:
            action: what the user did (``csr``, ``install``, ``settings``,
                ``rollback``); recorded in the archive and the audit log.
            changes: relative name -> complete new contents, or ``None`` to
                remove the file.  Contents that depend on the current ones
                belong in a :meth:`transaction` instead.
            details: extra facts for the audit log (fingerprints, names);
                never key material.

        Returns:
            The archive entry holding the previous versions, or ``None`` when
            every file already had the requested contents.

        Raises:
            BusyError: another writer holds the lock; nothing was touched.
            StoreError: a write failed; the previous files are back in place.
        """
        with self.transaction(action, details, wait=wait) as tx:
            for rel, data in changes.items():
                tx.write(rel, data)
        return tx.entry

    def _commit(self, session: _Session, action: str, tx: Transaction) -> ArchiveEntry | None:
        changes = tx._writes
        details = tx.details
        current = {rel: tx._base[rel] if rel in tx._base else self._read_current(rel) for rel in changes}
        todo = {rel: data for rel, data in changes.items() if current[rel] != data}
        if not todo:
            return None
        self._preflight(session, todo)
        meta = {rel: self._file_meta(session, rel) for rel in todo}
        archive = session.folder("sslconf/archive", create=True)
        self._private(archive)
        entry_id, when = self._new_id(archive)
        seq = self._next_seq(archive)
        token = os.urandom(16).hex()
        # Modes and owners are not in the journal: recovery takes them from
        # the store's rules again (a journal is a file anyone may damage).
        journal: dict[str, Any] = {
            "version": 1, "id": entry_id, "action": action, "state": "prepare", "token": token,
            "files": {rel: {"old": _digest(current[rel]), "new": _digest(data),
                            "tmp": None if data is None else _tmp_name(_split(rel)[1], entry_id)}
                      for rel, data in todo.items()},
        }
        entry: ArchiveEntry | None = None
        stage = "archive"
        try:
            self._write_journal(session, journal)
            entry = self._write_entry(session, archive, entry_id, when, action,
                                      {rel: current[rel] for rel in todo}, details, seq, token)
            stage = "write"
            for rel, data in todo.items():
                if data is None:
                    continue
                folder, name = _split(rel)
                d = session.folder("/".join(folder), create=True)
                d.create(journal["files"][rel]["tmp"], data, meta[rel][0], _owner(meta[rel][1]))
            for rel_folder in {"/".join(_split(rel)[0]) for rel in todo}:
                session.folder(rel_folder).fsync()
            journal["state"] = "commit"
            self._write_journal(session, journal)
            for rel, data in todo.items():
                folder, name = _split(rel)
                d = session.folder("/".join(folder))
                if data is None:
                    d.unlink(name)
                else:
                    d.rename(journal["files"][rel]["tmp"], name)
            for rel_folder in {"/".join(_split(rel)[0]) for rel in todo}:
                session.folder(rel_folder).fsync()
            self._drop_journal(session)
        except Exception as exc:
            restored = self._undo(session, journal, "now", current)
            self._audit(session, action, entry.id if entry is not None and not restored else None,
                        current, changes, details, result="failed", error=type(exc).__name__)
            if isinstance(exc, XmailnbError):
                raise
            if stage == "archive":
                raise StoreError.of("store.archive_failed", "store.write_failed.fix", action=action,
                                    reason=_reason(exc)) from exc
            key = "store.write_failed" if restored else "store.write_failed.unrestored"
            raise StoreError.of(key, f"{key}.fix", action=action, id=entry_id,
                                reason=_reason(exc)) from exc
        assert entry is not None
        _COMMITTED.append(entry)
        log.info("%s in %s: wrote %s; removed %s; previous versions archived as %s (%s): %s", action,
                 self.mailroot.path, _names(rel for rel, data in todo.items() if data is not None),
                 _names(rel for rel, data in todo.items() if data is None), entry.id, entry.path,
                 _names(rel for rel in todo if current[rel] is not None))
        self._audit(session, action, entry.id, current, todo, details, result="ok")
        return entry

    def _preflight(self, session: _Session, todo: Mapping[str, bytes | None]) -> None:
        """Refuse before anything is written when a folder cannot be written:
        a read-only tree must not end with "some could not be put back"."""
        folders = {"sslconf"} | {"/".join(_split(rel)[0]) for rel in todo}
        for rel_folder in sorted(folders):
            # The nearest folder that exists is the one a write would need.
            probe = rel_folder
            while True:
                d = session.existing(probe)
                if d is not None:
                    break
                probe = probe.rpartition("/")[0]
            self._check_writable(d)
        archive = session.existing("sslconf/archive")
        if archive is not None:
            self._check_writable(archive)

    def _check_writable(self, d: _Dir) -> None:
        if d.writable():
            return
        code = errno.EACCES
        try:
            if d.fd is not None and os.fstatvfs(d.fd).f_flag & os.ST_RDONLY:
                code = errno.EROFS
        except (OSError, AttributeError):
            pass
        raise StoreError.of("store.readonly", "store.readonly.fix", path=str(self.mailroot.path),
                            folder=str(d.path), reason=os.strerror(code))

    def _private(self, archive: _Dir) -> None:
        # The archive holds old private keys: owner only, whatever made it.
        if os.name != "posix" or archive.fd is None:
            return
        st = archive.fstat()
        if stat.S_IMODE(st.st_mode) != DIR_MODE:
            os.fchmod(archive.fd, DIR_MODE)

    def _file_meta(self, session: _Session, rel: str) -> tuple[int, list[int] | None]:
        """The mode and (as root) owner a new version of *rel* gets."""
        folder, name = _split(rel)
        d = session.existing("/".join(folder))
        st = d.lstat(name) if d is not None else None
        mode = KEY_MODE if is_key_file(rel) else (stat.S_IMODE(st.st_mode) if st is not None else DEFAULT_MODE)
        owner: list[int] | None = None
        if session.owner is not None:
            owner = [st.st_uid, st.st_gid] if st is not None else list(session.owner)
        return mode, owner

    # -- the journal -------------------------------------------------------------------
    def _write_journal(self, session: _Session, journal: Mapping[str, Any]) -> None:
        d = session.sslconf
        d.unlink(JOURNAL_TMP)
        data = json.dumps(journal, indent=1, sort_keys=True).encode()
        d.create(JOURNAL_TMP, data, KEY_MODE, session.owner)
        d.rename(JOURNAL_TMP, JOURNAL_NAME)
        d.fsync()

    def _drop_journal(self, session: _Session) -> None:
        if session.sslconf.unlink(JOURNAL_NAME):
            session.sslconf.fsync()

    def _undo(self, session: _Session, journal: Mapping[str, Any], when: str,
              previous: Mapping[str, bytes | None] | None = None) -> bool:
        """Put the files of *journal* back to their old contents (from
        *previous*, else from the archive entry), drop the entry, the staged
        files and the journal.  Returns whether all of that succeeded.

        *when* says which files are ours to put back: ``"now"`` (an error in
        this process: every file that differs), ``"prepare"`` (nothing was
        renamed yet: none), ``"commit"`` (those holding the new contents;
        a file someone else changed since is left alone).
        """
        entry_id = journal["id"]
        ok = True
        old: Mapping[str, bytes | None] | None = previous
        for rel, info in journal["files"].items():
            folder, name = _split(rel)
            try:
                d = session.existing("/".join(folder))
                if d is None:
                    continue
                if info.get("tmp"):
                    d.unlink(info["tmp"])
                if when == "prepare":
                    continue
                try:
                    now = _digest(d.read(name))
                except OSError:
                    now = "unreadable"
                if now == info["old"] or (when == "commit" and now != info["new"]):
                    continue
                if old is None:
                    old = self._archived_for_recovery(session, entry_id, journal["files"])
                self._put(session, rel, old[rel], entry_id)
            except OSError as exc:
                log.info("could not put %s back: %s", rel, exc)
                ok = False
            except Exception as exc:  # a bug boundary: the undo goes on with the next file
                log_unexpected(log, f"putting {rel} back", exc)
                ok = False
        if not ok:
            return False
        try:
            archive = session.existing("sslconf/archive")
            if archive is not None:
                # The id was new to this change: nothing changed in the end,
                # and an entry would only be noise in the history.  Only the
                # journal that made the entry (same token) may remove it.
                archive.rmtree(f".{entry_id}{PARTIAL_SUFFIX}")
                token = journal.get("token")
                if isinstance(token, str) and token and self._token_of(archive, entry_id) == token:
                    archive.rmtree(entry_id)
                if archive.lstat(entry_id) is None:
                    self._drop_marks(archive, entry_id)
                archive.fsync()
            self._drop_journal(session)
            self._clear(session, session.sslconf, JOURNAL_TMP)
        except OSError as exc:
            log.info("could not clean up after an undone change: %s", exc)
            return False
        except Exception as exc:  # a bug boundary: the journal stays for the next recovery
            log_unexpected(log, "cleaning up after an undone change", exc)
            return False
        return True

    def _put(self, session: _Session, rel: str, data: bytes | None, entry_id: str) -> None:
        """Replace *rel* with *data* (``None``: remove it) at once: temp file,
        rename; mode and owner by the store's rules (:meth:`_file_meta`)."""
        folder, name = _split(rel)
        d = session.folder("/".join(folder), create=data is not None)
        if data is None:
            d.unlink(name)
        else:
            mode, owner = self._file_meta(session, rel)
            tmp = _tmp_name(name, entry_id, ".undo")
            d.unlink(tmp)
            d.create(tmp, data, mode, _owner(owner))
            d.rename(tmp, name)
        d.fsync()

    def _clear(self, session: _Session, d: _Dir, name: str) -> None:
        """Remove the store's own file *name*; anything else in its place
        (a folder, a FIFO) is moved aside, not deleted."""
        st = d.lstat(name)
        if st is None:
            return
        if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            d.unlink(name)
        else:
            self._set_aside(session, d, name)
        d.fsync()

    def _archived_for_recovery(self, session: _Session, entry_id: str,
                               files: Mapping[str, Any]) -> dict[str, bytes | None]:
        archive = session.folder("sslconf/archive")
        out: dict[str, bytes | None] = {}
        with archive.child(entry_id) as entry_dir:
            for rel, info in files.items():
                if info["old"] is None:
                    out[rel] = None
                    continue
                folder, name = _split(rel)
                with entry_dir.walk(["files", *folder]) as d:
                    data = d.read(name)
                if data is None or sha256_hex(data) != info["old"]:
                    raise StoreError.of("store.archive.corrupt", "store.archive.corrupt.fix",
                                        id=entry_id, name=rel)
                out[rel] = data
        return out

    def recover(self) -> Msg | None:
        """Complete or undo an interrupted change (see the module docstring).

        Takes the lock without waiting: a writer that holds it is alive,
        and its journal is its own.  Returns what was done, or ``None``.
        Never raises; a failure is logged and left for the next command.
        """
        try:
            with self._session(wait=0) as session:
                return self._recover_locked(session)
        except BusyError:
            return None
        except (OSError, XmailnbError) as exc:
            # Read-only for this user, say: the next command that may write
            # repairs it (every write recovers first, and refuses until then).
            log.info("recovery of %s not possible now: %s", self.mailroot.path, exc)
            return None
        except Exception as exc:  # a bug boundary: the next writer refuses until recovered
            log_unexpected(log, f"recovering {self.mailroot.path}", exc)
            return None

    def _recover_locked(self, session: _Session) -> Msg | None:
        sslconf = session.sslconf
        st = sslconf.lstat(JOURNAL_NAME)
        if st is None:
            if sslconf.lstat(JOURNAL_TMP) is not None:
                # Killed while writing the first journal: nothing else happened.
                self._clear(session, sslconf, JOURNAL_TMP)
                self._sweep(session)
            return None
        raw: bytes | None = None
        journal: dict[str, Any] | None = None
        if stat.S_ISREG(st.st_mode):
            try:
                raw = sslconf.read(JOURNAL_NAME, JOURNAL_LIMIT)
            except OSError as exc:
                log.info("the journal of %s cannot be read: %s", self.mailroot.path, exc)
            if raw is not None:
                journal = self._usable_journal(session, raw)
        if journal is None:
            return self._recover_from_disk(session, raw)
        entry_id, state, files = journal["id"], journal["state"], journal["files"]
        action = str(journal.get("action") or "?")
        result = "recovered-back"
        if state == "commit" and self._roll_forward(session, journal):
            result = "recovered-forward"
            self._drop_journal(session)
        elif not self._undo(session, journal, "commit" if state == "commit" else "prepare"):
            raise StoreError.of("store.recovery_failed", "store.recovery_failed.fix",
                                path=str(self.mailroot.path))
        self._clear(session, sslconf, JOURNAL_TMP)
        self._sweep(session)
        self._audit(session, action, entry_id if result == "recovered-forward" else None, {}, {},
                    {"journal": entry_id, "files": {rel: {"before": info.get("old"), "after": info.get("new")}
                                                    for rel, info in files.items()}}, result=result)
        key = "store.recovered.forward" if result == "recovered-forward" else "store.recovered.back"
        return Msg.of(key, action=_action_msg(action), id=entry_id)

    def _usable_journal(self, session: _Session, raw: bytes) -> dict[str, Any] | None:
        """The journal in *raw* when the store wrote it and it can be acted
        on; ``None`` when it is damaged, too large or deep, in an unknown
        state, names a file or an id the store never makes, or does not
        belong to the archive entry it names."""
        try:
            journal = bounded_loads(raw, name=f"sslconf/{JOURNAL_NAME}", max_bytes=JOURNAL_LIMIT, max_depth=8)
            if not isinstance(journal, dict):
                raise _Tampered("journal")
            entry_id, state, files, token = journal["id"], journal["state"], journal["files"], journal.get("token")
            if not (isinstance(entry_id, str) and _ID.fullmatch(entry_id)):
                raise _Tampered("id")
            if state not in ("prepare", "commit"):
                raise _Tampered("state")
            if not (isinstance(token, str) and _TOKEN.fullmatch(token)):
                raise _Tampered("token")
            if not isinstance(files, dict) or not files or not all(isinstance(i, dict) for i in files.values()):
                raise _Tampered("files")
            _check_files({rel: info.get("new") for rel, info in files.items()})
            _check_files({rel: info.get("old") for rel, info in files.items()})
            for rel, info in files.items():
                tmp = info.get("tmp")
                want = None if info.get("new") is None else _tmp_name(_split(rel)[1], entry_id)
                if tmp != want:
                    raise _Tampered(rel)
            archive = session.existing("sslconf/archive")
            exists = archive is not None and archive.lstat(entry_id) is not None
            if archive is not None and exists and self._token_of(archive, entry_id) != token:
                # An entry this journal did not make: never undo into it, never remove it.
                raise _Tampered("id")
            if state == "commit" and not exists:
                raise _Tampered("id")  # a change is committed only after its entry is made
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, _Tampered, XmailnbError) as exc:
            log.info("the journal of %s is not usable: %s", self.mailroot.path, exc)
            return None
        return journal

    def _set_aside(self, session: _Session, d: _Dir, name: str) -> str | None:
        """Move *name* (a file, folder, FIFO: whatever it is) out of the way into
        ``sslconf/archive/set-aside/``; returns its new name, relative to the
        MailRoot (``None``: it could not be moved, so it was removed)."""
        try:
            archive = session.folder("sslconf/archive", create=True)
            self._private(archive)
            aside = session.folder(f"sslconf/archive/{SET_ASIDE}", create=True)
            stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
            n = 1
            while aside.lstat(f"{stamp}-{n}{name}") is not None:
                n += 1
            new = f"{stamp}-{n}{name}"
            if d.fd is not None and aside.fd is not None:
                _replace(name, new, src_dir_fd=d.fd, dst_dir_fd=aside.fd)
            else:
                _replace(os.path.join(d.path, name), os.path.join(aside.path, new))
            aside.fsync()
            d.fsync()
            return aside.name_of(new)
        except (OSError, XmailnbError) as exc:
            log.info("could not move %s aside (%s): removing it", d.name_of(name), exc)
            d.rmtree(name)
            d.fsync()
            return None

    def _staged(self, session: _Session) -> dict[str, dict[str, str]]:
        """The staged files on disk: entry id -> {managed file: staged name}."""
        found: dict[str, dict[str, str]] = {}
        for folder in MANAGED_FOLDERS:
            try:
                d = session.existing(folder)
                names = d.names() if d is not None else []
            except (OSError, XmailnbError):
                continue
            for staged in names:
                m = _STAGED.fullmatch(staged)
                if m is None:
                    continue
                rel = f"{folder}/{m['name']}" if folder else m["name"]
                if is_managed(rel):
                    found.setdefault(m["id"], {})[rel] = staged
        return found

    def _recover_from_disk(self, session: _Session, raw: bytes | None) -> Msg:
        """Repair after a journal that cannot be used, from what is on disk.

        The journal is set aside (never a permanent block).  Staged files
        name the change that was under way: that change's archive entry,
        when it is the newest, holds the versions from before it, and they
        are put back (a committed change cannot be told from an uncommitted
        one without the journal, and undoing is always possible).  Finally
        server.cert and server.key must belong together: when they do not,
        the one that matches the other is restored from the archive.
        """
        sslconf = session.sslconf
        aside = self._set_aside(session, sslconf, JOURNAL_NAME)
        self._clear(session, sslconf, JOURNAL_TMP)
        undone: str | None = None
        archive = session.existing("sslconf/archive")
        staged = self._staged(session)
        ordered = self._ordered(archive) if archive is not None else []
        newest = ordered[0] if ordered else None
        if newest is not None and newest.id in staged:
            try:
                old = self.archived_bytes(newest)
            except (OSError, XmailnbError) as exc:
                log.info("archive entry %s cannot be used for the repair: %s", newest.id, exc)
            else:
                for rel, data in old.items():
                    folder, name = _split(rel)
                    d = session.existing("/".join(folder))
                    try:
                        now = _digest(d.read(name)) if d is not None else None
                    except OSError:
                        now = "unreadable"
                    if now != _digest(data):
                        self._put(session, rel, data, newest.id)
                assert archive is not None
                archive.rmtree(newest.id)
                archive.fsync()
                undone = newest.id
        elif newest is not None and raw is not None and newest.seq is not None:
            # No staged file: killed before staging or after the last rename.
            # When the damaged journal still holds the newest entry's token
            # and the files are as they were before it, it was not carried out.
            token = self._token_of(archive, newest.id)  # type: ignore[arg-type]
            if token is not None and token.encode() in raw and self._unchanged_since(session, newest):
                archive.rmtree(newest.id)  # type: ignore[union-attr]
                archive.fsync()  # type: ignore[union-attr]
                undone = newest.id
        self._sweep(session)
        repaired = self._repair_pair(session)
        self._audit(session, "recovery", None, {}, {},
                    {"journal_set_aside": aside, "undone": undone, "pair": repaired}, result="recovered-disk")
        where = aside or f"sslconf/{JOURNAL_NAME}"
        if repaired is not None:
            return Msg.of("store.recovered.disk.pair", path=where, name=repaired[0], id=repaired[1])
        if undone is not None:
            return Msg.of("store.recovered.disk.back", path=where)
        return Msg.of("store.recovered.disk.none", path=where)

    def _unchanged_since(self, session: _Session, entry: ArchiveEntry) -> bool:
        for rel, digest in entry.files.items():
            if not is_managed(rel):
                return False
            folder, name = _split(rel)
            try:
                d = session.existing("/".join(folder))
                now = _digest(d.read(name)) if d is not None else None
            except (OSError, XmailnbError):
                return False
            if now != digest:
                return False
        return True

    def _repair_pair(self, session: _Session) -> tuple[str, str] | None:
        """When server.cert and server.key both exist, can be read and do not
        belong together, put back the newest archived version of one of them
        that matches the other.  Returns (file, archive id) or ``None``."""
        try:
            cert_pem = session.root.read("server.cert")
            key_pem = session.root.read("server.key")
        except OSError:
            return None
        if cert_pem is None or key_pem is None or pair_matches(cert_pem, key_pem) is not False:
            return None
        archive = session.existing("sslconf/archive")
        for entry in self._ordered(archive) if archive is not None else []:
            for rel in ("server.key", "server.cert"):
                if not entry.files.get(rel):
                    continue
                try:
                    data = self.archived_bytes(entry)[rel]
                except (OSError, XmailnbError):
                    continue
                if data is None:
                    continue
                ok = pair_matches(cert_pem, data) if rel == "server.key" else pair_matches(data, key_pem)
                if ok:
                    log.warning("server.cert and server.key did not match: %s put back from %s", rel, entry.id)
                    # As a change of its own: the version replaced is archived.
                    tx = Transaction(self, Action.ROLLBACK, {"restored": entry.id, "repaired": "pair"})
                    tx._base[rel] = cert_pem if rel == "server.cert" else key_pem
                    tx.write(rel, data)
                    try:
                        self._commit(session, "rollback", tx)
                    except XmailnbError as exc:
                        log.info("could not archive before the repair: %s", exc)
                        self._put(session, rel, data, entry.id)
                    return rel, entry.id
        return None

    def _roll_forward(self, session: _Session, journal: Mapping[str, Any]) -> bool:
        """Finish a committed change from its staged files; ``False`` when a
        staged file is missing or damaged (then it is undone instead)."""
        entry_id = journal["id"]
        plan: list[tuple[_Dir, str, dict[str, Any], str]] = []
        for rel, info in journal["files"].items():
            folder, name = _split(rel)
            d = session.existing("/".join(folder))
            if d is None:
                if info["new"] is None:
                    continue
                return False
            try:
                now = _digest(d.read(name))
            except OSError:
                now = "unreadable"
            if now == info["new"]:
                continue
            if info["new"] is None:
                plan.append((d, name, info, "unlink"))
                continue
            try:
                staged = d.read(info["tmp"])
            except OSError:
                staged = None
            if staged is None or sha256_hex(staged) != info["new"]:
                return False
            plan.append((d, name, info, "rename"))
        archive = session.existing("sslconf/archive")
        if archive is None or archive.lstat(entry_id) is None:
            # The archive entry is made before the commit: without it the
            # journal was not ours to trust.
            return False
        for d, name, info, how in plan:
            if how == "unlink":
                d.unlink(name)
            else:
                d.rename(info["tmp"], name)
            d.fsync()
        return True

    def _sweep(self, session: _Session) -> None:
        """Remove the store's leftovers: staged files and half-built entries
        (also those of versions before the journal, or of a crash)."""
        for folder in (*MANAGED_FOLDERS, "sslconf/archive"):
            try:
                d = session.existing(folder)
                if d is None:
                    continue
                for name in d.names():
                    if name.startswith(".") and (name.endswith(TMP_SUFFIX) or (
                            folder == "sslconf/archive" and name.endswith(PARTIAL_SUFFIX))):
                        d.rmtree(name)
            except XmailnbError:
                continue  # a link or a file in its place: writing there is refused anyway
            except OSError as exc:
                log.info("could not clear leftovers in %s: %s", folder, exc)

    def rollback(self, entry_id: str | None = None) -> tuple[ArchiveEntry, ArchiveEntry | None]:
        """Restore exactly the files of an archived state (default: newest).

        The state is chosen and read under the lock.  The current versions
        are archived first, so a second plain rollback undoes the first.
        Returns (restored entry, new archive entry).

        Raises:
            InputError: no such state, or its archive copy is damaged or
                names files the product never writes (tampered manifest).
        """
        with self.transaction(Action.ROLLBACK) as tx:
            target = tx.archive(entry_id)
            contents = self.archived_bytes(target)
            tx.details["restored"] = target.id
            for rel, data in contents.items():
                tx.write(rel, data)
        return target, tx.entry

    # -- audit log -------------------------------------------------------------
    def _audit(self, session: _Session, action: str, entry_id: str | None,
               before: Mapping[str, bytes | None], after: Mapping[str, bytes | None],
               details: Mapping[str, Any], *, result: str, error: str | None = None) -> None:
        record = AuditRecord(time=clock.now().isoformat(timespec="seconds"), action=action, result=result,
                             archive=entry_id,
                             files={rel: {"before": _digest(before.get(rel)), "after": _digest(after.get(rel))}
                                    for rel in after},
                             details=dict(details), error=error)
        line = (json.dumps(record.to_json(), sort_keys=True, ensure_ascii=False, default=str)
                + "\n").encode("utf-8")
        try:
            d = session.sslconf
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC
            existed = d.lstat("audit.log") is not None
            if d.fd is not None:
                fd = os.open("audit.log", flags, KEY_MODE, dir_fd=d.fd)
            else:
                fd = os.open(d.path / "audit.log", flags, KEY_MODE)
            try:
                if not existed and session.owner is not None:
                    os.fchown(fd, *session.owner)
                os.write(fd, line)
                _fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            # The audit log must never turn a completed change into a failure.
            pass

    def audit_records(self) -> list[AuditRecord]:
        """The audit log's records, oldest first (unreadable lines left out)."""
        try:
            data = read_regular(self.mailroot.audit_log, 64 * 1024 * 1024, follow_symlinks=False)
        except OSError:
            return []
        out = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                record = AuditRecord.from_json(bounded_loads(line, name="sslconf/audit.log", max_depth=16))
            except ValueError:
                continue
            if record is not None:
                out.append(record)
        return out


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _action_msg(action: str) -> Msg | str:
    return Msg.of(f"store.action.{action}") if action in set(Action) else action


def pair_matches(cert_pem: bytes, key_pem: bytes) -> bool | None:
    """Whether the first certificate of *cert_pem* is for the private key
    *key_pem*; ``None`` when either cannot be read (encrypted, not PEM)."""
    # Only after an unusable journal: the store itself never parses keys.
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from ..pki.keys import public_key_matches

    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
        key = serialization.load_pem_private_key(key_pem, None)
    except (ValueError, TypeError):
        return None
    return bool(certs) and public_key_matches(key, certs[0])


def _owner(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return None


def recover_interrupted(mr: MailRoot) -> Msg | None:
    """Complete or undo a change to *mr* that was interrupted half-way.

    Cheap when there is nothing to do (one ``lstat``), so every entry point
    calls it: :func:`xmailnb.mailroot.resolve.resolve`, the diagnosis, every write of the store.
    Returns what was done (for the user), or ``None``.  Never raises: a
    MailRoot that cannot be repaired now (read-only, busy) is repaired by
    the next command that can.
    """
    journal = mr.journal_path
    if not (os.path.lexists(journal) or os.path.lexists(f"{journal}.tmp")):
        return None
    return Store(mr).recover()

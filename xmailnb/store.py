"""The one place that changes a MailRoot: lock, archive, atomic replace, audit.

Every action (CSR, install, settings, rollback) hands the store the complete
new contents of the files it changes.  Under an exclusive per-MailRoot lock
the store archives the current versions, replaces each file atomically (temp
file, fsync, rename) and appends a line to the audit log.  If anything fails
half-way, the files already replaced are put back from the archive, so the
MailRoot ends either exactly as before or exactly as intended.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from .certfiles import sha256_hex
from . import clock
from .errors import BusyError, InputError, XmailnbError
from .mailroot import MailRoot

__all__ = ["ArchiveEntry", "Store", "StoreError", "sha256_hex", "is_key_file", "BOOKKEEPING_ACTIONS"]

# Actions that record the product's own progress (checklist ticks, ACME
# account and status, the workbook's settings) rather than the mail server's configuration: archived
# like everything else, but a plain rollback steps over them.
BOOKKEEPING_ACTIONS = frozenset({"checklist", "acme", "workbook"})

KEY_MODE = 0o600
DIR_MODE = 0o700
DEFAULT_MODE = 0o644
MANIFEST = "manifest.json"

# Seams for fault-injection tests: each step of a write goes through one of
# these, so a test can make exactly that step fail.
_fsync = os.fsync
_replace = os.replace
_mkstemp = tempfile.mkstemp
_unlink = os.unlink


def _write(fh: Any, data: bytes) -> None:
    fh.write(data)


class StoreError(XmailnbError):
    """A write failed; the MailRoot was put back as it was (exit 1)."""

    exit_code = 1


def is_key_file(rel: str) -> bool:
    return rel.endswith(".key")


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or type(exc).__name__)



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

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time, "action": self.action,
                "files": dict(self.files), "details": dict(self.details)}


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes the rename durable on POSIX; Windows has no such
    # call (and NTFS journals the rename), so it is skipped there.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        _unlink(path)
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write *data* to *path* through a temp file in the same folder.

    The temp file is created with *mode* from the start, so a key is never
    readable by others, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _mkstemp(prefix=f".{path.name}.", suffix=".xmailnb-tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            _write(fh, data)
            fh.flush()
            _fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class Store:
    """Serialised, archived, atomic writes to one MailRoot."""

    def __init__(self, mailroot: MailRoot) -> None:
        self.mailroot = mailroot

    # -- locking -----------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the MailRoot's exclusive lock, or raise :class:`BusyError`.

        filelock uses flock()/LockFileEx, which the OS releases when the
        process dies, so a crashed writer never leaves a stale lock.
        """
        import filelock

        sslconf = self.mailroot.sslconf
        try:
            sslconf.mkdir(exist_ok=True, mode=DIR_MODE)
        except OSError as exc:
            raise StoreError.of("store.lock_failed", "store.lock_failed.fix", path=str(self.mailroot.path),
                                reason=_reason(exc)) from None
        lock = filelock.FileLock(str(self.mailroot.lock_path), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise BusyError.of("store.busy", "store.busy.fix", path=str(self.mailroot.path)) from None
        except OSError as exc:
            raise StoreError.of("store.lock_failed", "store.lock_failed.fix", path=str(self.mailroot.path),
                                reason=_reason(exc)) from None
        try:
            yield
        finally:
            lock.release()

    # -- archive -------------------------------------------------------------
    def _new_id(self) -> tuple[str, dt.datetime]:
        when = clock.now()
        while True:
            entry_id = when.strftime("%Y%m%dT%H%M%S%fZ")
            if not (self.mailroot.archive_dir / entry_id).exists():
                return entry_id, when
            when += dt.timedelta(microseconds=1)

    def _archive(self, action: str, current: Mapping[str, bytes | None],
                 details: Mapping[str, Any]) -> ArchiveEntry:
        archive = self.mailroot.archive_dir
        archive.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.chmod(archive, DIR_MODE)
        entry_id, when = self._new_id()
        # Built under a temp name and renamed, so a half-written entry never
        # shows up in the history.
        staging = archive / f".{entry_id}.partial"
        staging.mkdir(mode=DIR_MODE)
        try:
            files: dict[str, str | None] = {}
            for rel, data in current.items():
                if data is None:
                    files[rel] = None
                    continue
                target = staging / "files" / Path(*rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
                write_atomic(target, data, KEY_MODE)
                files[rel] = sha256_hex(data)
            entry = ArchiveEntry(id=entry_id, time=when.isoformat(timespec="microseconds"),
                                 action=action, files=files, details=dict(details))
            write_atomic(staging / MANIFEST,
                         json.dumps(entry.to_json(), indent=2, sort_keys=True).encode(), KEY_MODE)
            _replace(staging, archive / entry_id)
            _fsync_dir(archive)
        except BaseException:
            # Whatever step failed, no entry may be left that no change follows.
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(archive / entry_id, ignore_errors=True)
            raise
        return ArchiveEntry(id=entry.id, time=entry.time, action=action, files=files,
                            details=entry.details, path=archive / entry_id)

    def _entry_names(self) -> list[str]:
        """Archive entry folder names, newest first (ids sort by time)."""
        try:
            with os.scandir(self.mailroot.archive_dir) as it:
                names = [e.name for e in it if not e.name.startswith(".") and e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(names, reverse=True)

    def count(self) -> int:
        """How many archived states there are (cheap: no manifest is read)."""
        return len(self._entry_names())

    def history(self, limit: int | None = None, *, bookkeeping: bool = True) -> list[ArchiveEntry]:
        """Archived states, newest first; at most *limit* of them.

        Only the manifests of the entries returned are read, so showing the
        newest few stays fast however long the archive grows.  Unreadable
        entries are skipped, and so are :data:`BOOKKEEPING_ACTIONS` entries
        unless *bookkeeping* is true.
        """
        entries: list[ArchiveEntry] = []
        archive = self.mailroot.archive_dir
        for name in self._entry_names():
            if limit is not None and len(entries) >= limit:
                break
            child = archive / name
            try:
                raw = json.loads((child / MANIFEST).read_text(encoding="utf-8"))
                if not bookkeeping and raw["action"] in BOOKKEEPING_ACTIONS:
                    continue
                entries.append(ArchiveEntry(id=raw["id"], time=raw["time"], action=raw["action"],
                                            files=raw["files"], details=raw.get("details", {}),
                                            path=child))
            except (OSError, ValueError, KeyError, TypeError):
                continue
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
        for e in self.history():
            if e.id == entry_id:
                return e
        raise InputError.of("store.history.unknown", "store.history.unknown.fix", id=entry_id)

    def archived_bytes(self, entry: ArchiveEntry) -> dict[str, bytes | None]:
        """The archived contents of *entry*, checked against its manifest."""
        assert entry.path is not None
        out: dict[str, bytes | None] = {}
        for rel, digest in entry.files.items():
            if digest is None:
                out[rel] = None
                continue
            try:
                data = (entry.path / "files" / Path(*rel.split("/"))).read_bytes()
            except OSError:
                data = b""
            if sha256_hex(data) != digest:
                raise InputError.of("store.archive.corrupt", "store.archive.corrupt.fix",
                                    id=entry.id, name=rel)
            out[rel] = data
        return out

    # -- the one write path ----------------------------------------------------
    def _read_current(self, rel: str) -> bytes | None:
        path = self.mailroot.file(rel)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def _mode_for(self, rel: str) -> int:
        if is_key_file(rel):
            return KEY_MODE
        try:
            return stat.S_IMODE(self.mailroot.file(rel).stat().st_mode)
        except FileNotFoundError:
            return DEFAULT_MODE

    def apply(self, action: str, changes: Mapping[str, bytes | None], *,
              details: Mapping[str, Any] | None = None) -> ArchiveEntry | None:
        """Replace (or, for ``None``, remove) the files in *changes* as one unit.

        Args:
            action: what the user did (``csr``, ``install``, ``settings``,
                ``rollback``); recorded in the archive and the audit log.
            changes: relative name -> complete new contents, or ``None`` to
                remove the file.
            details: extra facts for the audit log (fingerprints, names);
                never key material.

        Returns:
            The archive entry holding the previous versions, or ``None`` when
            every file already had the requested contents.

        Raises:
            BusyError: another writer holds the lock; nothing was touched.
            StoreError: a write failed; the previous files are back in place.
        """
        details = dict(details or {})
        with self.lock():
            current = {rel: self._read_current(rel) for rel in changes}
            todo = {rel: data for rel, data in changes.items() if current[rel] != data}
            if not todo:
                return None
            modes = {rel: self._mode_for(rel) for rel in todo}
            try:
                entry = self._archive(action, {rel: current[rel] for rel in todo}, details)
            except Exception as exc:
                self._audit(action, None, current, changes, details, result="failed",
                            error=type(exc).__name__)
                raise StoreError.of("store.archive_failed", "store.write_failed.fix", action=action,
                                    reason=_reason(exc)) from exc
            done: list[str] = []
            try:
                for rel, data in todo.items():
                    path = self.mailroot.file(rel)
                    # Counted before the write: a failure after the rename
                    # (the directory fsync) must still be undone.
                    done.append(rel)
                    if data is None:
                        _remove(path)
                    else:
                        write_atomic(path, data, modes[rel])
            except Exception as exc:
                restored = self._undo(done, current, modes)
                if restored:
                    # Nothing changed in the end: the entry would only be noise.
                    shutil.rmtree(entry.path, ignore_errors=True)  # type: ignore[arg-type]
                self._audit(action, entry.id if not restored else None, current, changes,
                            details, result="failed", error=type(exc).__name__)
                key = "store.write_failed" if restored else "store.write_failed.unrestored"
                raise StoreError.of(key, f"{key}.fix", action=action, id=entry.id,
                                    reason=_reason(exc)) from exc
            self._audit(action, entry.id, current, todo, details, result="ok")
            return entry

    def _undo(self, done: list[str], previous: Mapping[str, bytes | None],
              modes: Mapping[str, int]) -> bool:
        ok = True
        for rel in reversed(done):
            path = self.mailroot.file(rel)
            try:
                old = previous[rel]
                if old is None:
                    _remove(path)
                else:
                    write_atomic(path, old, modes[rel])
            except Exception:
                ok = False
        return ok

    def rollback(self, entry_id: str | None = None) -> tuple[ArchiveEntry, ArchiveEntry | None]:
        """Restore exactly the files of an archived state (default: newest).

        The current versions are archived first, so a second plain rollback
        undoes the first.  Returns (restored entry, new archive entry).
        """
        target = self.entry(entry_id)
        contents = self.archived_bytes(target)
        new_entry = self.apply("rollback", contents, details={"restored": target.id})
        return target, new_entry

    # -- audit log -------------------------------------------------------------
    def _audit(self, action: str, entry_id: str | None, before: Mapping[str, bytes | None],
               after: Mapping[str, bytes | None], details: Mapping[str, Any], *,
               result: str, error: str | None = None) -> None:
        record: dict[str, Any] = {
            "time": clock.now().isoformat(timespec="seconds"),
            "action": action,
            "result": result,
            "archive": entry_id,
            "files": {rel: {"before": None if before.get(rel) is None else sha256_hex(before[rel]),  # type: ignore[arg-type]
                            "after": None if after.get(rel) is None else sha256_hex(after[rel])}  # type: ignore[arg-type]
                      for rel in after},
            "details": dict(details),
        }
        if error:
            record["error"] = error
        line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        log = self.mailroot.audit_log
        try:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                _fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            # The audit log must never turn a completed change into a failure.
            pass

    def audit_records(self) -> list[dict[str, Any]]:
        try:
            lines = self.mailroot.audit_log.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

"""Processes of a class left behind by a hub that was killed hard.

JupyterHub stops every server, the proxy and its services when it is
stopped; a hub killed with SIGKILL cannot, and its proxy, board, culler,
trainees' servers and kernels keep the class's ports.  So while the class
runs, ``classroom serve`` records the process ids of the hub and of
everything under it (``hub/processes.json``, with each process's start
time and command line), and before it checks the ports (and after it
stops) it stops the class's own leftovers:

* recorded processes that are still the same process: same start time
  (``/proc/PID/stat``, clock ticks since boot) and same command line, so a
  process id the system has given to something else since is never
  touched;
* and, for processes started after the last record (a kernel of the last
  second), processes of this user whose environment names this class
  folder (``XMAILNB_CLASS_DIR``, which the hub, its proxy and its services
  inherit, or a ``XMAILNB_DATA_DIR`` inside it for the single-user servers
  and their kernels).

Linux only (``/proc``); elsewhere nothing is found and nothing is done.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import boundedjson
from ..files import read_regular, write_atomic
from .roster import Classroom

__all__ = ["ProcessId", "identify", "descendants", "record", "recorded", "forget", "serving", "claim", "stop_person",
           "leftover_pids", "stop_leftover_servers"]

log = logging.getLogger(__name__)

_RECORD = "hub/processes.json"
_MAX_RECORD_BYTES = 256 * 1024
_MAX_RECORDED = 2000
_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessId:
    """A process as it can be recognised later: its id, when it started
    (clock ticks since boot) and its command line."""

    pid: int
    start: int
    cmdline: str

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "start": self.start, "cmdline": self.cmdline}


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or
    # parentheses itself: the fields after the last ')' are the reliable ones.
    return raw.rpartition(")")[2].split()


def identify(pid: int) -> ProcessId | None:
    """*pid* as a :class:`ProcessId`, or ``None`` when no such process runs
    (or it is a zombie)."""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 20 or fields[0] == "Z":
        return None
    try:
        cmdline = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return ProcessId(pid, int(fields[19]), cmdline.replace(b"\0", b" ").decode("utf-8", "replace").strip())


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    try:
        return int(fields[1]) if fields else None
    except (IndexError, ValueError):
        return None


def _all_pids() -> list[int]:
    try:
        return [int(e.name) for e in _PROC.iterdir() if e.name.isdigit()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Every process under *pid* (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for other in _all_pids():
        parent = _parent(other)
        if parent is not None:
            children.setdefault(parent, []).append(other)
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(children.get(child, []))
    return out


def _record_file(room: Classroom) -> Path:
    return room.path / _RECORD


def _read_record(room: Classroom) -> dict[str, Any]:
    try:
        doc = boundedjson.loads(read_regular(_record_file(room), _MAX_RECORD_BYTES), name=str(_record_file(room)),
                                max_bytes=_MAX_RECORD_BYTES)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _entry(item: Any) -> ProcessId | None:
    if not isinstance(item, dict):
        return None
    pid, start, cmdline = item.get("pid"), item.get("start"), item.get("cmdline")
    if (isinstance(pid, int) and not isinstance(pid, bool) and pid > 1 and isinstance(start, int)
            and isinstance(cmdline, str)):
        return ProcessId(pid, start, cmdline)
    return None


def recorded(room: Classroom) -> list[ProcessId]:
    """The processes recorded for *room* (entries of the wrong shape are skipped:
    the file is only ever a hint, each entry is checked against /proc)."""
    items = _read_record(room).get("processes")
    found = (_entry(item) for item in (items if isinstance(items, list) else [])[:_MAX_RECORDED])
    return [p for p in found if p is not None]


def _write_record(room: Classroom, owner: ProcessId | None, entries: list[ProcessId]) -> None:
    doc = {"owner": owner.to_json() if owner else None, "processes": [p.to_json() for p in entries]}
    try:
        write_atomic(_record_file(room), json.dumps(doc).encode(), 0o600)
    except OSError as exc:
        log.warning("cannot record the class's processes: %s", exc)


def serving(room: Classroom) -> ProcessId | None:
    """The ``classroom serve`` that serves *room* now (another process than
    this one), or ``None``."""
    owner = _entry(_read_record(room).get("owner"))
    if owner is None or owner.pid == os.getpid() or identify(owner.pid) != owner:
        return None
    return owner


def claim(room: Classroom) -> None:
    """Record this process as the one serving *room*."""
    _write_record(room, identify(os.getpid()), recorded(room))


def record(room: Classroom, pids: Iterable[int]) -> list[ProcessId]:
    """Add the processes *pids* to the class's record (those still running);
    entries of processes that have ended are dropped.  Returns the record."""
    known = {p.pid: p for p in recorded(room) if identify(p.pid) == p}
    for pid in pids:
        ident = identify(pid)
        if ident is not None:
            known[pid] = ident
    entries = list(known.values())[-_MAX_RECORDED:]
    _write_record(room, _entry(_read_record(room).get("owner")), entries)
    return entries


def forget(room: Classroom) -> None:
    """Clear the record (the class stopped cleanly)."""
    try:
        _record_file(room).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot clear the class's process record: %s", exc)


def _environ(pid: int) -> dict[bytes, bytes]:
    try:
        raw = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key] = value
    return out


def _ours_by_environment(room: Classroom) -> list[int]:
    root = os.fsencode(str(room.path)).rstrip(b"/") + b"/"
    found = []
    for pid in _all_pids():
        env = _environ(pid)
        for where in (env.get(b"XMAILNB_CLASS_DIR"), env.get(b"XMAILNB_DATA_DIR")):
            if where and (where.rstrip(b"/") + b"/").startswith(root):
                found.append(pid)
                break
    return found


def _ancestors() -> set[int]:
    """This process and its parents: never ours to stop (a test or a shell
    that runs ``serve`` may itself carry the class's environment)."""
    out, pid = set(), os.getpid()
    while pid and pid not in out:
        out.add(pid)
        pid = _parent(pid) or 0
    return out


def leftover_pids(room: Classroom) -> list[int]:
    """PIDs of this class's processes still running (hub, proxy, services,
    servers, kernels): recorded ones that are still the same process, and
    those whose environment names this class."""
    if not _PROC.is_dir():
        return []
    mine = _ancestors()
    found = [p.pid for p in recorded(room) if p.pid not in mine and identify(p.pid) == p]
    found += [pid for pid in _ours_by_environment(room) if pid not in mine and pid not in found
              and identify(pid) is not None]
    return found


def stop_person(room: Classroom, name: str, grace: float = 10.0) -> list[int]:
    """Stop the processes of one person of *room* (their workbook server and
    its kernels: ``XMAILNB_DATA_DIR`` is their folder), as ``classroom
    remove`` does; returns the ids of those that were found."""
    folder = os.fsencode(str(room.data_dir(name))).rstrip(b"/")
    mine = _ancestors()
    found = [pid for pid in _all_pids() if pid not in mine
             and (_environ(pid).get(b"XMAILNB_DATA_DIR") or b"").rstrip(b"/") == folder]
    _stop(found, grace)
    return found


def _stop(pids: list[int], grace: float) -> None:
    targets = {pid: identify(pid) for pid in pids}
    for pid, ident in targets.items():
        if ident is not None:
            _signal(pid, ident, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = dict(targets)
    while alive and time.monotonic() < deadline:
        alive = {pid: ident for pid, ident in alive.items() if ident is not None and identify(pid) == ident}
        time.sleep(0.1)
    for pid, ident in alive.items():
        if ident is not None:
            _signal(pid, ident, signal.SIGKILL)


def stop_leftover_servers(room: Classroom, grace: float = 10.0) -> list[int]:
    """Stop this class's leftover processes (SIGTERM, then SIGKILL after
    *grace* seconds); returns the ids of those that were found."""
    found = leftover_pids(room)
    _stop(found, grace)
    if found:
        log.info("stopped %d leftover process(es) of the class in %s", len(found), room.path)
    forget(room)
    return found


def _signal(pid: int, ident: ProcessId, signum: int) -> None:
    # A pidfd pins the process: checked to be the recorded one after it is
    # opened, the signal cannot reach a process that got the id since.
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        fd = None
    try:
        if identify(pid) != ident:
            return
        if fd is not None:
            signal.pidfd_send_signal(fd, signum)
        else:  # no pidfds (old kernel): the check above is all there is
            os.kill(pid, signum)
    except OSError:
        pass
    finally:
        if fd is not None:
            os.close(fd)

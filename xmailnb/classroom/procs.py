"""Processes of a class left behind by a hub that was killed hard.

JupyterHub stops every server, the proxy and its services when it is
stopped; a hub killed with SIGKILL cannot.  Before ``classroom serve``
starts (and after it stops) the class's own leftovers are stopped: only
processes of this user whose command line is one of ours and whose
environment names this class folder (``XMAILNB_CLASS_DIR``, which the
hub, its proxy and its services inherit, or a ``XMAILNB_DATA_DIR`` inside
it for the single-user servers and their kernels).  Linux only (``/proc``); elsewhere
nothing is done.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from .roster import Classroom

__all__ = ["leftover_pids", "stop_leftover_servers"]

log = logging.getLogger(__name__)


def _environ(pid: int) -> dict[bytes, bytes]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key] = value
    return out


def leftover_pids(room: Classroom) -> list[int]:
    """PIDs of this class's processes still running (hub, proxy, services,
    servers, kernels)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    root = os.fsencode(str(room.path)).rstrip(b"/") + b"/"
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        env = _environ(int(entry.name))
        for where in (env.get(b"XMAILNB_CLASS_DIR"), env.get(b"XMAILNB_DATA_DIR")):
            if where and (where.rstrip(b"/") + b"/").startswith(root):
                found.append(int(entry.name))
                break
    return found


def stop_leftover_servers(room: Classroom, grace: float = 10.0) -> list[int]:
    """Stop this class's leftover processes (SIGTERM, then SIGKILL)."""
    pids = leftover_pids(room)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        time.sleep(0.1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return pids


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True

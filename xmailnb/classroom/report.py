"""What a trainee's server tells the board: step progress of their sandbox.

Plain Python.  Three small files link the trainee's page (its kernel), their
server and the board, all in the trainee's data folder (the parent of the
sandbox, so a reset does not move them):

* ``class-page.json``, written by the page (:func:`write_page`): the step
  on screen and since when, the last time the trainee did something, the
  raised hand, the refused attempts.
* ``class-inbox.json``, written by the server for the page
  (:func:`write_inbox`): the trainer's messages and when the trainer
  lowered the hand.
* The sandbox itself, read by :func:`snapshot`.

The board never trusts what a trainee's token posts: it asks the server for
the sandbox's progress with the board service's own credentials
(:mod:`xmailnb.classroom.board`); the server computes it in a short-lived
child process (:mod:`xmailnb.classroom.readout`), so that the progress rule
and cryptography stay out of every trainee's long-running server.
:func:`signature` is what the reporter polls (a few ``stat`` calls) to
notice a change cheaply, and what the server keys its last report by.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import boundedjson
from .. import clock
from ..files import read_regular, write_atomic
from ..errors import InputError
from ..i18n import LANGUAGES, Msg
from ..mailroot.layout import REL_WATCHED

__all__ = ["BOARD_CLASSES", "BOARD_SERVICE", "CLASS_ENV", "PAGE_FILE", "INBOX_FILE", "MAX_REFUSALS", "MAX_MESSAGE_CHARS",
           "MESSAGE_QUEUE", "signature", "read_page", "write_page", "read_inbox", "write_inbox",
           "refusal", "queue_message", "read_queue"]

log = logging.getLogger(__name__)

#: Step state -> the board cell's class (DESIGN.md section 4).
BOARD_CLASSES = {"done": "xm-ok", "attention": "xm-warn", "broken": "xm-error", "todo": "xm-pending"}

PAGE_FILE = "class-page.json"
INBOX_FILE = "class-inbox.json"
MAX_REFUSALS = 20
_MAX_FILE_BYTES = 256 * 1024


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = boundedjson.loads(read_regular(path, _MAX_FILE_BYTES), name=path.name, max_bytes=_MAX_FILE_BYTES)
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    try:
        write_atomic(path, json.dumps(doc, ensure_ascii=False).encode("utf-8"), 0o600)
    except OSError as exc:  # a full or read-only disk must not break the page
        log.warning("cannot write %s: %s", path, exc)


def read_page(data_dir: Path) -> dict[str, Any]:
    """What the trainee's page last said (``{}`` when it never did)."""
    return _read_json(data_dir / PAGE_FILE)


def write_page(data_dir: Path, doc: Mapping[str, Any]) -> None:
    _write_json(data_dir / PAGE_FILE, doc)


def read_inbox(data_dir: Path) -> dict[str, Any]:
    """The trainer's messages and the lowered hand, as the server last wrote them."""
    return _read_json(data_dir / INBOX_FILE)


def write_inbox(data_dir: Path, doc: Mapping[str, Any]) -> None:
    if read_inbox(data_dir) != dict(doc):
        _write_json(data_dir / INBOX_FILE, doc)


#: The board's name as a JupyterHub service: its token is the only one a
#: trainee's server answers ``xmailnb/progress`` and ``xmailnb/reset`` for.
BOARD_SERVICE = "class-board"
#: Set in a trainee's server's environment (and so its kernel's): the page shows the class controls.
CLASS_ENV = "XMAILNB_CLASSROOM"
#: Messages the trainer sends from the command line, for the board to hand over.
MESSAGE_QUEUE = "hub/class-messages.jsonl"
MAX_MESSAGE_CHARS = 500


def queue_message(class_dir: Path, names: list[str], to: str, message: str) -> dict[str, Any]:
    """Queue a message from the trainer for *to* (a trainee of *names*, or
    ``""`` for everyone); the board hands it over within seconds.

    Raises:
        InputError: an empty or too long message, or *to* is not a trainee.
    """
    words = message.strip()
    if not words or len(words) > MAX_MESSAGE_CHARS:
        raise InputError.of("classroom.message.invalid", "classroom.message.invalid.fix",
                            field="text", max=MAX_MESSAGE_CHARS)
    if to and to not in names:
        raise InputError.of("classroom.message.unknown", "classroom.message.unknown.fix",
                            field="to", name=to, names=", ".join(names))
    entry = {"time": clock.now().isoformat(timespec="seconds"), "to": to, "text": words}
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(class_dir / MESSAGE_QUEUE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return entry


def read_queue(class_dir: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The messages queued after byte *offset*, and the offset to read from next."""
    try:
        data = read_regular(class_dir / MESSAGE_QUEUE, 4 * 1024 * 1024)
    except OSError:
        return [], offset
    if len(data) < offset:  # the queue was replaced: read it from the start
        offset = 0
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[offset:end].decode("utf-8", "replace").splitlines():
        try:
            entry = boundedjson.loads(line, name="class-messages.jsonl")
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("text"), str) and isinstance(entry.get("to"), str):
            out.append(entry)
    return out, max(offset, end)


def refusal(step: str, msg: Msg) -> dict[str, Any]:
    """A refused attempt as the page records it: when, where, why (in both languages)."""
    return {"time": clock.now().isoformat(timespec="seconds"), "step": step,
            "reason": {lang: msg.render(lang) for lang in LANGUAGES}}


def signature(path: Path) -> tuple[Any, ...]:
    """A cheap fingerprint of the sandbox: changes whenever a watched file does."""
    out: list[Any] = []
    for rel in REL_WATCHED:
        try:
            st = os.stat(path.joinpath(*rel.split("/")))
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)

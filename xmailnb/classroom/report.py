"""What a trainee's server tells the board: step progress of their sandbox.

Plain Python.  :func:`snapshot` is one call of the one progress rule
(:func:`xmailnb.checks.progress.step_progress`) turned into JSON, with the open
problems and the recent history rendered in both languages so that the
board can show them in the trainer's language without reading the
trainee's files.  :func:`signature` is what the reporter polls (a few
``stat`` calls) to notice a change cheaply.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..checks.progress import step_progress
from ..i18n import LANGUAGES
from ..mailroot.layout import MailRoot
from ..mailroot.sandbox import generation
from ..mailroot.store import Store

__all__ = ["BOARD_CLASSES", "signature", "snapshot"]

log = logging.getLogger(__name__)

#: Step state -> the board cell's class (DESIGN.md section 4).
BOARD_CLASSES = {"done": "xm-ok", "attention": "xm-warn", "broken": "xm-error", "todo": "xm-pending"}

# Files whose change can change a step's state.
_WATCHED = ("server.cert", "server.key", "server.tab", "certs.pem", "sslconf", "sslconf/server.csr",
            "sslconf/server.key", "sslconf/audit.log", "sslconf/progress.jsonl", "sslconf/checklist.json",
            "sslconf/xmailnb-generation.json", "sslconf/practice-ca/issued/server.crt")
_HISTORY = 15


def signature(path: Path) -> tuple[Any, ...]:
    """A cheap fingerprint of the sandbox: changes whenever a watched file does."""
    out: list[Any] = []
    for rel in _WATCHED:
        try:
            st = os.stat(path.joinpath(*rel.split("/")))
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def _finding(f: Any) -> dict[str, Any]:
    return {"check": f.check, "status": str(f.status),
            "message": {lang: f.message.render(lang) for lang in LANGUAGES},
            "fix": {lang: f.fix.render(lang) for lang in LANGUAGES} if f.fix is not None else None}


def snapshot(mr: MailRoot) -> dict[str, Any]:
    """Step states, last change, open problems, all findings and recent history of *mr*."""
    progress = step_progress(mr)
    history = []
    for record in Store(mr).audit_records()[-_HISTORY:]:
        history.append({"time": str(record.get("time", "")), "action": str(record.get("action", "")),
                        "result": str(record.get("result", ""))})
    return {
        "steps": {str(step): str(state) for step, state in progress.states.items()},
        "last_change": progress.last_change.isoformat() if progress.last_change else None,
        "problems": [_finding(f) for f in progress.problems],
        "findings": [_finding(f) for f in progress.report.findings],
        "history": history,
        "generation": generation(mr).number,
    }

"""The progress of a trainee's sandbox, read in a short-lived process.

``python -m xmailnb.classroom.readout --at <time> <sandbox folder>`` prints one JSON
document, the :func:`snapshot` of that sandbox, and exits.  A trainee's
server (:class:`xmailnb.classroom.singleuser.Sandbox`) runs it when the
board asks and the sandbox changed since the last reading (its
:func:`xmailnb.classroom.report.signature` differs), so that the progress
rule and cryptography, which it needs, load in this child for a moment
rather than staying in every trainee's long-running server (figure 7b of
``docs/performance.md``).

:func:`snapshot` is one call of the one progress rule
(:func:`xmailnb.checks.progress.step_progress`) turned into JSON, with the
open problems and the recent history rendered in both languages so that
the board can show them in the trainer's language without reading the
trainee's files.  It only reads: nothing in the sandbox is written or
recovered here.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from .. import clock
from ..checks.progress import events, step_progress
from ..i18n import LANGUAGES
from ..mailroot.layout import MailRoot
from ..mailroot.sandbox import generation
from ..mailroot.store import Store

__all__ = ["snapshot", "main"]

_HISTORY = 15


def _finding(f: Any) -> dict[str, Any]:
    return {"check": f.check, "status": str(f.status),
            "message": {lang: f.message.render(lang) for lang in LANGUAGES},
            "fix": {lang: f.fix.render(lang) for lang in LANGUAGES} if f.fix is not None else None}


#: Progress-log events that record what the trainee looked at, not a change.
_LOOKING = ("step", "diagnose")


def _last_change(mr: MailRoot, audited: dt.datetime | None) -> dt.datetime | None:
    """The newest of the store's last change and the progress log's events
    (a live check, the notice shown): both are something the trainee did.
    Looking is not progress: the step on screen and a diagnosis shown are
    left out (else a trainee refused and browsing would never look stuck)."""
    times = [audited] if audited is not None else []
    for record in events(mr)[-50:]:
        if record.get("event") in _LOOKING:
            continue
        try:
            when = dt.datetime.fromisoformat(str(record.get("time")))
        except ValueError:
            continue
        times.append(when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc))
    aware = [t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc) for t in times]
    return max(aware) if aware else None


def snapshot(mr: MailRoot) -> dict[str, Any]:
    """Step states, last change, open problems, all findings and recent history of *mr*."""
    progress = step_progress(mr)
    last = _last_change(mr, progress.last_change)
    history = []
    for record in Store(mr).audit_records()[-_HISTORY:]:
        history.append({"time": record.time, "action": record.action, "result": record.result})
    return {
        "steps": {str(step): str(state) for step, state in progress.states.items()},
        "last_change": last.isoformat() if last else None,
        "problems": [_finding(f) for f in progress.problems],
        "findings": [_finding(f) for f in progress.report.findings],
        "history": history,
        "generation": generation(mr).number,
    }


def main(argv: list[str] | None = None) -> int:
    """``--at TIME SANDBOX``: print the :func:`snapshot` of the sandbox folder
    *SANDBOX* as of *TIME* (ISO 8601, the asking server's clock); exit status 2
    for other arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "--at":
        return 2
    # The server's "now" (a frozen clock in tests), not this process's own.
    with clock.frozen(dt.datetime.fromisoformat(args[1])):
        doc = snapshot(MailRoot(path=Path(args[2]), is_sandbox=True))
    sys.stdout.write(json.dumps(doc, ensure_ascii=False))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The trainer's administration of a class: the list, the export and the
login slips (``xmailnb classroom list|export``, ``--slips``).

Plain Python: the command line calls it; no JupyterHub import.

What a trainee did comes from two places, read defensively:

* their sandbox (``DIR/users/NAME/sandbox-MailRoot``): each step's mark is
  :func:`xmailnb.checks.progress.step_progress`, the workbook's own rule,
  and when a step was reached is read from the sandbox's audit log and
  progress log;
* the class board's state (``hub/board-state.json``): counts the board
  keeps (``refusals``, ``hand_raises``, ``reached``) when it has them.
  A field the board does not keep is left empty, never guessed.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..checks.progress import StepState, events, step_progress
from .. import boundedjson
from ..files import read_regular
from ..i18n import LANGUAGES, text
from ..mailroot.layout import MailRoot
from ..mailroot.sandbox import generation
from ..mailroot.store import Store
from ..steps import STEPS, Step
from .roster import Account, Classroom

__all__ = ["TraineeRecord", "trainee_records", "export_csv", "list_doc", "slips_html", "board_reports",
           "CSV_COLUMNS"]

_BOARD_STATE = "hub/board-state.json"
_MAX_BOARD_BYTES = 16 * 1024 * 1024
_DONE = (StepState.DONE, StepState.ATTENTION)
# Audit-log actions that first reach a step (the same sets the progress rule uses).
_REACHED_BY: Mapping[Step, frozenset[str]] = {
    Step.CSR: frozenset({"csr", "install"}),
    Step.SUBMIT: frozenset({"practice-ca", "acme", "install"}),
    Step.INSTALL: frozenset({"install"}),
    Step.SETTINGS: frozenset({"settings", "install"}),
}

#: The export's columns: name, each step's mark and when it was reached,
#: then the counts.  Stable keys (a script reads them), not translated.
CSV_COLUMNS: tuple[str, ...] = (
    "name",
    *(c for s in STEPS for c in (str(s), f"{s}_reached")),
    "finished", "refusals", "hand_raises", "resets", "last_change",
)


@dataclass(frozen=True)
class TraineeRecord:
    """One trainee as the export and the list show them.

    Attributes:
        marks: step -> state (``done``/``attention``/``broken``/``todo``).
        reached: step -> when it was first reached (ISO 8601, UTC), for
            steps that hold now.
        refusals, hand_raises: as the board counted them, ``None`` when it
            keeps no such count.
        resets: how often their sandbox was reset.
    """

    account: Account
    marks: Mapping[str, str]
    reached: Mapping[str, str]
    refusals: int | None
    hand_raises: int | None
    resets: int
    last_change: str | None

    @property
    def finished(self) -> bool:
        return all(self.marks.get(str(s)) in ("done", "attention") for s in STEPS)

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.account.name}
        for s in STEPS:
            out[str(s)] = self.marks.get(str(s), "todo")
            out[f"{s}_reached"] = self.reached.get(str(s), "")
        out.update({"finished": "yes" if self.finished else "no",
                    "refusals": "" if self.refusals is None else self.refusals,
                    "hand_raises": "" if self.hand_raises is None else self.hand_raises,
                    "resets": self.resets, "last_change": self.last_change or ""})
        return out

    def to_json(self) -> dict[str, Any]:
        return {"name": self.account.name, "marks": dict(self.marks), "reached": dict(self.reached),
                "finished": self.finished, "refusals": self.refusals, "hand_raises": self.hand_raises,
                "resets": self.resets, "last_change": self.last_change}


def board_reports(room: Classroom) -> dict[str, dict[str, Any]]:
    """name -> what the board keeps about them (empty when it keeps nothing
    readable)."""
    try:
        doc = boundedjson.loads(read_regular(room.path / _BOARD_STATE, _MAX_BOARD_BYTES),
                                name=_BOARD_STATE, max_bytes=_MAX_BOARD_BYTES)
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    # "pages": what each trainee's page said (refusals, hand raises); "reports": their progress.
    for part in ("pages", "reports"):
        kept = doc.get(part)
        for name, record in (kept.items() if isinstance(kept, dict) else ()):
            if isinstance(name, str) and isinstance(record, dict):
                out.setdefault(name, {}).update(record)
    return out


def _count(value: Any) -> int | None:
    """A count the board keeps as a number, a list of events or ``{"count": n}``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        return _count(value.get("count"))
    return None


def _iso(value: Any) -> str | None:
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _reached_from_sandbox(mr: MailRoot) -> dict[str, str]:
    out: dict[str, str] = {}
    for record in Store(mr).audit_records():
        if not record.ok:
            continue
        when = _iso(record.time)
        for step, actions in _REACHED_BY.items():
            if when and str(step) not in out and record.action in actions:
                out[str(step)] = when
    for event in events(mr):
        kind, when = event.get("event"), _iso(event.get("time"))
        if not when:
            continue
        if kind == "diagnose":
            out.setdefault(str(Step.DIAGNOSE), when)
        elif kind == "probe" and event.get("passed"):
            out.setdefault(str(Step.PROBE), when)
        elif kind == "notice":
            out.setdefault(str(Step.NOTICE), when)
    return out


def _record(room: Classroom, account: Account, board: Mapping[str, Any]) -> TraineeRecord:
    box = room.sandbox(account.name)
    marks = {str(s): "todo" for s in STEPS}
    reached: dict[str, str] = {}
    resets, last = 0, None
    if box.is_dir():
        mr = MailRoot(box, is_sandbox=True)
        progress = step_progress(mr)
        marks = {str(s): str(state) for s, state in progress.states.items()}
        last = progress.last_change.astimezone(dt.timezone.utc).isoformat(timespec="seconds") \
            if progress.last_change else None
        reached = _reached_from_sandbox(mr)
        resets = generation(mr).number
    kept = board.get("reached")
    if isinstance(kept, dict):  # the board's own record wins where it has one
        for step, when in kept.items():
            if (iso := _iso(when)) and str(step) in marks:
                reached[str(step)] = iso
    reached = {s: w for s, w in reached.items() if marks.get(s) in ("done", "attention")}
    return TraineeRecord(account, marks, reached, _count(board.get("refusals")),
                         _count(board.get("hand_raises")), resets, last)


def trainee_records(room: Classroom) -> list[TraineeRecord]:
    """Every trainee of *room*, in roster order."""
    reports = board_reports(room)
    return [_record(room, a, reports.get(a.name, {})) for a in room.trainees]


def export_csv(records: Sequence[TraineeRecord]) -> bytes:
    """The export as CSV (UTF-8, a header line of :data:`CSV_COLUMNS`)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record.row())
    return buf.getvalue().encode("utf-8")


def list_doc(room: Classroom, url: str) -> dict[str, Any]:
    """What ``classroom list --json`` prints: the class and everyone in it."""
    reports = board_reports(room)
    people = []
    for account in room.accounts:
        entry = account.to_json()
        entry["sandbox"] = str(room.sandbox(account.name))
        if account.role == "trainee":
            steps = reports.get(account.name, {}).get("steps")
            entry["steps"] = ({str(s): str(steps.get(str(s), "todo")) for s in STEPS}
                              if isinstance(steps, dict) else None)
        people.append(entry)
    return {"path": str(room.path), "lang": room.lang, "url": url,
            "trainer": room.trainer.name, "trainees": len(room.trainees), "accounts": people}


# -- login slips ----------------------------------------------------------------------------

_SLIP_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", "Meiryo", sans-serif;
       color: #111; background: #fff; }
main { display: grid; grid-template-columns: 1fr 1fr; gap: 6mm; padding: 10mm; }
.xm-slip { border: 1px dashed #555; padding: 5mm 6mm; break-inside: avoid; page-break-inside: avoid; }
.xm-slip h2 { font-size: 11pt; margin: 0 0 3mm; font-weight: normal; color: #333; }
.xm-slip dl { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: 1.5mm 4mm; }
.xm-slip dt { font-size: 9pt; color: #444; }
.xm-slip dd { margin: 0; font-size: 12pt; overflow-wrap: anywhere; }
.xm-slip dd.xm-slip-password { font-family: "DejaVu Sans Mono", "Consolas", monospace; font-size: 14pt;
                    letter-spacing: 0.08em; }
.xm-slip dd.xm-slip-address { font-size: 10pt; }
.xm-slip p { font-size: 8.5pt; color: #444; margin: 3mm 0 0; }
@media print { main { padding: 0; } @page { margin: 10mm; } }
"""


def _both(key: str, first: str) -> str:
    langs = [first] + [lang for lang in LANGUAGES if lang != first]
    return " / ".join(dict.fromkeys(text(key, lang) for lang in langs))


def slips_html(room: Classroom, passwords: Mapping[str, str], url: str) -> str:
    """A printable page, one card per person of *passwords* (name, password,
    address), in both languages (the class's first).  Self-contained: no
    script, no font or style from elsewhere."""
    first = room.lang
    e = html.escape
    labels = {k: e(_both(f"classroom.slip.{k}", first)) for k in ("title", "name", "password", "address", "keep")}
    cards = []
    for account in room.accounts:
        if account.name not in passwords:
            continue
        role = e(_both(f"classroom.role.{account.role}", first))
        cards.append(
            f'<section class="xm-slip xm-slip-{e(account.name)}">\n'
            f'<h2>{labels["title"]} ({role})</h2>\n<dl>\n'
            f'<dt>{labels["name"]}</dt><dd class="xm-slip-name">{e(account.name)}</dd>\n'
            f'<dt>{labels["password"]}</dt><dd class="xm-slip-password">{e(passwords[account.name])}</dd>\n'
            f'<dt>{labels["address"]}</dt><dd class="xm-slip-address">{e(url)}</dd>\n'
            f'</dl>\n<p>{labels["keep"]}</p>\n</section>')
    return ("<!DOCTYPE html>\n"
            f'<html lang="{e(first)}">\n<head>\n<meta charset="utf-8">\n'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">\n'
            f"<title>{labels['title']}</title>\n<style>{_SLIP_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(cards) + "\n</main>\n</body>\n</html>\n")


"""The class board: a JupyterHub service only the trainer can open.

One line per trainee (``xm-trainee-NAME``): the step they are looking at
and for how long, one cell per workbook step (``xm-step-<step>`` with
``xm-ok``/``xm-warn``/``xm-error``/``xm-pending`` from
:func:`xmailnb.checks.progress.step_progress`), refused attempts
(``xm-refusals``), idle time, last change, a raised hand
(``xm-hand-raised``, lowered with ``xm-hand-clear-NAME``), ``xm-stuck``
while they need help, a reset button (``xm-reset-NAME``, confirmed with
``xm-reset-confirm``) and a link to a read-only view of their workbook.
Above the table the class summary (``xm-class-summary``), sorting, the
"needs help" filter and the trainer's message to the class.  The page asks
for the state once a second.

Access:

* Pages and the page's API: JupyterHub OAuth; the hub lets through only
  tokens with ``access:services!service=class-board`` (the trainer's role).
  Anyone else gets 403.
* Progress: the board reads it from each trainee's server
  (``POST /user/NAME/xmailnb/progress``, through the hub's proxy) with the
  service's own token, which the server checks with the hub.  A trainee's
  server only says "read me again" (``POST api/report`` with its token);
  the body of that call is ignored, so a token a trainee mints at
  ``/hub/token`` cannot write their row.
* Reset: the board posts to the trainee's server with the service's token.
  A server that is not running gets the reset with the board's next read.

Nothing here reads a trainee's folder: what the board knows, it read over
HTTP, so the board works the same when servers run in containers or on
other machines.  The last state is kept in ``hub/board-state.json`` so a
restarted hub still shows where everyone was (everyone offline until their
page is open again).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web

from .. import boundedjson
from ..clock import timestamp as _ts
from ..files import read_regular, write_atomic
from ..i18n import LANGUAGES, text
from ..logs import follow_in_service
from ..checks.progress import STEPS
from . import roster
from .hubconfig import REPORT_SCOPE
from .report import BOARD_CLASSES, MAX_MESSAGE_CHARS, MAX_REFUSALS, read_queue

__all__ = ["Board", "make_app", "main"]

log = logging.getLogger(__name__)

ONLINE_SECONDS = 25.0  # a server with a page open asks to be read every 10 s
MAX_REPORT_BYTES = 2 * 1024 * 1024
DEFAULT_STUCK_MINUTES = 10
MAX_MESSAGES = 50
PULL_TIMEOUT = 20.0
_STATES = frozenset(BOARD_CLASSES)
_STATUSES = frozenset({"ok", "info", "warn", "error"})
_ICONS = {"done": "\u2714", "attention": "\u26a0", "broken": "\u2716", "todo": "\u00b7"}
_STEP_NAMES = tuple(str(s) for s in STEPS)
_FINISHED = frozenset({"done", "attention"})


def _now() -> float:
    return time.time()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


class Board:
    """What the board knows of each trainee: the progress it last read from
    their server, what their page last said, and the trainer's own notes
    (hands lowered, resets, messages, the "stuck after" time)."""

    def __init__(self, class_dir: Path) -> None:
        self.class_dir = class_dir
        self.reports: dict[str, dict[str, Any]] = {}
        self.pages: dict[str, dict[str, Any]] = {}
        self.open: dict[str, bool] = {}
        self.received: dict[str, float] = {}
        self.pending: dict[str, int] = {}
        self.resets: dict[str, list[str]] = {}
        # The sandbox's generation each trainee's last reset made.
        self.reset_generation: dict[str, int] = {}
        self.hand_cleared: dict[str, str] = {}
        self.messages: list[dict[str, Any]] = []
        self.stuck_minutes = DEFAULT_STUCK_MINUTES
        self.queue_offset = 0
        self._load()

    @property
    def _file(self) -> Path:
        return self.class_dir / "hub" / "board-state.json"

    def _load(self) -> None:
        try:
            doc = boundedjson.loads(read_regular(self._file, 16 * 1024 * 1024), name=str(self._file), max_bytes=16 * 1024 * 1024)
            self.reports = {k: v for k, v in doc.get("reports", {}).items() if isinstance(v, dict)}
            self.pages = {k: v for k, v in doc.get("pages", {}).items() if isinstance(v, dict)}
            self.pending = {k: int(v) for k, v in doc.get("pending", {}).items()}
            self.resets = {k: [str(t) for t in v][-50:] for k, v in doc.get("resets", {}).items()
                           if isinstance(v, list)}
            self.reset_generation = {k: v for k, v in doc.get("reset_generation", {}).items()
                                     if _whole(v) is not None}
            self.hand_cleared = {k: str(v) for k, v in doc.get("hand_cleared", {}).items()}
            self.messages = [m for m in doc.get("messages", []) if isinstance(m, dict)][-MAX_MESSAGES:]
            self.stuck_minutes = int(doc.get("stuck_minutes", DEFAULT_STUCK_MINUTES))
            self.queue_offset = int(doc.get("queue_offset", 0))
        except (OSError, ValueError, AttributeError, TypeError):
            pass

    def _save(self) -> None:
        doc = {"reports": self.reports, "pages": self.pages, "pending": self.pending, "resets": self.resets,
               "reset_generation": self.reset_generation,
               "hand_cleared": self.hand_cleared, "messages": self.messages, "stuck_minutes": self.stuck_minutes,
               "queue_offset": self.queue_offset}
        try:
            write_atomic(self._file, json.dumps(doc).encode(), 0o600)
        except OSError as exc:
            log.warning("cannot keep the board's state: %s", exc)

    def room(self) -> roster.Classroom:
        return roster.load(self.class_dir)

    # -- what the board hands to a trainee's server, and what it reads back --------------
    def asking(self, name: str) -> dict[str, Any]:
        """The body of the board's read of *name*'s server: a reset kept for
        them, and their inbox (the trainer's messages, the lowered hand)."""
        inbox = {"messages": [m for m in self.messages if m.get("to") in ("", name)][-5:],
                 "hand_cleared": self.hand_cleared.get(name)}
        return {"reset": name in self.pending, "inbox": inbox}

    def take_answer(self, name: str, answer: Any, *, asked_reset: bool = False) -> None:
        """Record what *name*'s server answered to :meth:`asking`."""
        if not isinstance(answer, dict):
            raise ValueError("answer")
        clean = _clean(answer.get("report") or {})
        page = _clean_page(answer.get("page"))
        changed = self.reports.get(name) != clean or self.pages.get(name) != page
        self.reports[name], self.pages[name] = clean, page
        self.open[name] = answer.get("open") is True
        self.received[name] = _now()
        if asked_reset and name in self.pending:
            del self.pending[name]
            self._record_reset(name, clean.get("generation"))
            changed = True
        if changed:
            self._save()

    def lost(self, name: str) -> None:
        """*name*'s server did not answer: their page cannot be open."""
        self.open[name] = False

    def take_report(self, name: str, payload: dict[str, Any]) -> bool:
        """Record *name*'s progress as read from their server (tests and the
        benchmark); True when a reset waits for them."""
        self.take_answer(name, {"report": payload, "page": {}, "open": True})
        return name in self.pending

    def ask_reset(self, name: str) -> None:
        report = self.reports.get(name) or {}
        self.pending[name] = int(report.get("generation") or 0)
        self._save()

    def reset_done(self, name: str, generation: Any = None) -> None:
        """*name*'s server reset the sandbox; *generation* is the number it answered."""
        self.pending.pop(name, None)
        self._record_reset(name, generation)
        self._save()

    def _record_reset(self, name: str, generation: Any) -> None:
        self.resets.setdefault(name, []).append(_iso(_now()))
        number = _whole(generation)
        if number is not None:
            self.reset_generation[name] = number
        else:
            self.reset_generation.pop(name, None)

    def clear_hand(self, name: str) -> None:
        self.hand_cleared[name] = _iso(_now())
        self._save()

    def add_message(self, to: str, message: str) -> dict[str, Any]:
        entry = {"id": (self.messages[-1]["id"] + 1) if self.messages else 1, "time": _iso(_now()),
                 "to": to, "text": message[:MAX_MESSAGE_CHARS]}
        self.messages = (self.messages + [entry])[-MAX_MESSAGES:]
        self._save()
        return entry

    def take_queued(self) -> list[str]:
        """Take the messages queued from the command line
        (``xmailnb classroom message``); the names to hand them to."""
        entries, offset = read_queue(self.class_dir, self.queue_offset)
        if offset == self.queue_offset:
            return []
        self.queue_offset = offset
        names = [a.name for a in self.room().trainees]
        for entry in entries:
            if entry["to"] in ("", *names):
                self.add_message(entry["to"], entry["text"])
        self._save()
        to = {e["to"] for e in entries}
        return names if "" in to else [n for n in names if n in to]

    def set_stuck_minutes(self, minutes: int) -> None:
        self.stuck_minutes = max(1, min(240, int(minutes)))
        self._save()

    # -- the page's JSON ---------------------------------------------------------------------
    def row(self, name: str, now: float) -> dict[str, Any]:
        report = self.reports.get(name)
        page = self.pages.get(name) or {}
        received = self.received.get(name)
        online = bool(self.open.get(name)) and received is not None and now - received < ONLINE_SECONDS
        steps = (report or {}).get("steps") or {s: "todo" for s in _STEP_NAMES}
        at = next((s for s in _STEP_NAMES if steps.get(s) not in _FINISHED), None)
        done = sum(1 for s in _STEP_NAMES if steps.get(s) in _FINISHED)
        last_change = (report or {}).get("last_change")
        changed_ts = _ts(last_change)
        generation = (report or {}).get("generation", 0)
        # Refusals of this sandbox only: a reset starts the count again.
        refusals = [r for r in page.get("refusals", []) if r.get("generation") == generation]
        last_refusal = refusals[-1] if refusals else None
        resets = self.resets.get(name, [])
        last_reset = _ts(resets[-1]) if resets else None
        started = _ts(page.get("opened"))
        active = max([t for t in (_ts(page.get("active")), changed_ts) if t is not None], default=None)
        moved = max([t for t in (changed_ts, started, last_reset) if t is not None], default=None)
        hand_ts = _ts(page.get("hand"))
        cleared = _ts(self.hand_cleared.get(name))
        hand = hand_ts is not None and (cleared is None or cleared < hand_ts)
        stuck: list[str] = []
        since: list[float] = []
        if hand and hand_ts is not None:
            stuck.append("hand")
            since.append(hand_ts)
        refused_ts = _ts(last_refusal.get("time")) if last_refusal else None
        if refused_ts is not None and (changed_ts is None or refused_ts > changed_ts):
            stuck.append("refused")
            since.append(refused_ts)
        if online and at is not None and moved is not None and now - moved > self.stuck_minutes * 60:
            stuck.append("idle")
            since.append(moved + self.stuck_minutes * 60)
        # Acted since the reset: something the page did on the sandbox the reset
        # made (the generation: no two clocks, no same-second tie), else by time.
        acted_on = _whole(page.get("active_generation"))
        reset_gen = self.reset_generation.get(name)
        if acted_on is not None and reset_gen is not None:
            acted = acted_on >= reset_gen
        else:
            acted = active is not None and last_reset is not None and active > last_reset
        viewing = page.get("step") if online and page.get("step") in _STEP_NAMES else None
        step_since = _ts(page.get("step_since"))
        return {
            "name": name,
            "online": online,
            "reported": report is not None,
            "steps": steps,
            "at": at,
            "done": done,
            "finished": at is None,
            "viewing": viewing,
            "on_step_seconds": (now - step_since) if viewing and step_since is not None else None,
            "idle_seconds": (now - active) if online and active is not None else None,
            "last_change": last_change,
            "problems": [p["check"] for p in (report or {}).get("problems") or []],
            "refusals": len(refusals),
            "last_refusal": last_refusal,
            "hand": hand,
            "stuck": stuck,
            "stuck_seconds": (now - min(since)) if since else None,
            "generation": generation,
            "resets": len(resets),
            "reset_note": bool(resets) and not acted and name not in self.pending,
            "reset_pending": name in self.pending,
        }

    def state(self) -> dict[str, Any]:
        """The JSON the page draws: every trainee of the roster, in order,
        and the class summary."""
        now = _now()
        rows = [self.row(account.name, now) for account in self.room().trainees]
        at = {s: sum(1 for r in rows if r["at"] == s) for s in _STEP_NAMES}
        stuck_at: dict[str, int] = {}
        for r in rows:
            # Where they are stuck: the step of the refusal, else the page they look at, else their next step.
            refused = (r["last_refusal"] or {}).get("step") if "refused" in r["stuck"] else None
            where = next((s for s in (refused, r["viewing"], r["at"]) if s in _STEP_NAMES), None)
            if r["stuck"] and where:
                stuck_at[where] = stuck_at.get(where, 0) + 1
        problems: dict[str, dict[str, Any]] = {}
        for r in rows:
            for p in (self.reports.get(r["name"]) or {}).get("problems") or []:
                entry = problems.setdefault(p["check"], {"check": p["check"], "status": p["status"],
                                                         "message": p["message"], "names": []})
                entry["names"].append(r["name"])
        summary = {
            "trainees": len(rows),
            "online": sum(1 for r in rows if r["online"]),
            "at": at,
            "finished": sum(1 for r in rows if r["finished"]),
            "stuck": sum(1 for r in rows if r["stuck"]),
            "hands": sum(1 for r in rows if r["hand"]),
            "stuck_step": max(stuck_at, key=lambda s: (stuck_at[s], -_STEP_NAMES.index(s))) if stuck_at else None,
            "stuck_step_count": max(stuck_at.values()) if stuck_at else 0,
            "problems": sorted(problems.values(), key=lambda p: (-len(p["names"]), p["check"])),
        }
        return {"trainees": rows, "steps": list(_STEP_NAMES), "summary": summary,
                "stuck_minutes": self.stuck_minutes,
                "messages": self.messages[-5:]}


def _local(iso: str) -> str:
    """*iso* in this machine's local time, one unambiguous format: 2026-12-06 14:05:09."""
    ts = _ts(iso)
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S") if ts is not None else iso


def _clean_page(page: Any) -> dict[str, Any]:
    """What the trainee's page said (``class-page.json``), typed and bounded."""
    if not isinstance(page, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ("step", "step_since", "active", "opened", "hand"):
        value = page.get(key)
        out[key] = str(value)[:40] if isinstance(value, str) else None
    acted_on = _whole(page.get("active_generation"))
    out["active_generation"] = acted_on if acted_on is not None and 0 <= acted_on < 2**53 else None
    refusals = []
    raw = page.get("refusals")
    for r in (raw if isinstance(raw, list) else [])[-MAX_REFUSALS:]:
        if not isinstance(r, dict):
            continue
        given = r.get("reason")
        reason: dict[str, Any] = given if isinstance(given, dict) else {}
        refusals.append({"time": str(r.get("time", ""))[:40], "step": str(r.get("step", ""))[:20],
                         "generation": _whole(r.get("generation")) or 0,
                         "reason": {lang: str(reason.get(lang, ""))[:300] for lang in LANGUAGES}})
    out["refusals"] = refusals
    raises = _whole(page.get("hand_raises"))
    out["hand_raises"] = raises if raises is not None and raises >= 0 else 0
    return out


def _clean(payload: Any) -> dict[str, Any]:
    """Keep only what the board shows, of the expected types (a report
    comes from a trainee's process: trust its shape no more than needed)."""
    if not isinstance(payload, dict):
        raise ValueError("report")
    steps_in = payload.get("steps") or {}
    steps = {str(s): (steps_in.get(str(s)) if steps_in.get(str(s)) in _STATES else "todo") for s in STEPS}

    def findings(items: Any) -> list[dict[str, Any]]:
        out = []
        for f in (items if isinstance(items, list) else [])[:200]:
            if not isinstance(f, dict):
                continue
            def texts(v: Any) -> dict[str, str] | None:
                return {lang: str(v.get(lang, ""))[:2000] for lang in LANGUAGES} if isinstance(v, dict) else None
            out.append({"check": str(f.get("check", ""))[:100],
                        "status": f.get("status") if f.get("status") in _STATUSES else "info",
                        "message": texts(f.get("message")) or {lang: "" for lang in LANGUAGES},
                        "fix": texts(f.get("fix"))})
        return out

    raw_history = payload.get("history")
    history = [{"time": str(h.get("time", ""))[:40], "action": str(h.get("action", ""))[:40],
                "result": str(h.get("result", ""))[:40]}
               for h in (raw_history if isinstance(raw_history, list) else [])[:50] if isinstance(h, dict)]
    last = payload.get("last_change")
    return {"steps": steps, "last_change": str(last)[:40] if last else None,
            "problems": findings(payload.get("problems")), "findings": findings(payload.get("findings")),
            "history": history,
            "generation": _whole(payload.get("generation")) or 0}


# -- handlers ----------------------------------------------------------------------------

def _lang(handler: web.RequestHandler, default: str) -> str:
    asked = handler.get_argument("lang", "")
    if asked in LANGUAGES:
        return asked
    for part in handler.request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return default


class _Page(HubOAuthenticated, web.RequestHandler):  # type: ignore[misc]  # JupyterHub ships no types
    """A page or API call of the trainer (HubOAuth, board access scope)."""

    @property
    def board(self) -> Board:
        board: Board = self.settings["board"]
        return board

    def t(self, key: str, **params: Any) -> str:
        return text(key, self.lang, **params)

    def prepare(self) -> None:
        self.lang = _lang(self, self.board.room().lang)
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")


_STYLE = """
body { font-family: "Noto Sans CJK JP", "Noto Sans", sans-serif; margin: 1em 1.5em; color: #212121; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
.xm-sub { color: #555; margin-bottom: .6em; font-size: 90%; }
.xm-class-summary { display: flex; flex-wrap: wrap; gap: .4em 1.4em; align-items: baseline;
  background: #f5f7fa; border: 1px solid #dde3ea; padding: .5em .8em; margin-bottom: .6em; }
.xm-class-summary b { font-size: 110%; }
.xm-summary-at span { margin-right: .8em; white-space: nowrap; }
.xm-summary-stuck { color: #c62828; }
.xm-summary-problems { flex-basis: 100%; font-size: 90%; color: #444; }
.xm-summary-problems li { margin: 1px 0; }
.xm-tools { display: flex; flex-wrap: wrap; gap: .5em 1.2em; align-items: center; margin-bottom: .5em; font-size: 92%; }
.xm-tools input[type=number] { width: 4em; }
.xm-tools input.xm-message-text { width: 22em; }
table.xm-class-board { border-collapse: separate; border-spacing: 0; font-size: 14px; }
.xm-class-board th, .xm-class-board td { border-bottom: 1px solid #e3e3e3; padding: 4px 8px; text-align: center;
  white-space: nowrap; line-height: 20px; height: 20px; overflow: hidden; text-overflow: ellipsis; }
.xm-class-board thead th { position: sticky; top: 0; background: #fff; z-index: 2; border-bottom: 2px solid #bbb;
  font-weight: 600; font-size: 90%; }
.xm-class-board th.xm-name, .xm-class-board td.xm-refusals-cell, .xm-class-board td.xm-help { text-align: left; }
.xm-class-board td.xm-refusals-cell { max-width: 16em; }
.xm-class-board td.xm-step { width: 2.2em; padding: 4px 2px; }
tr.xm-stuck > * { background: #fff3f0; }
tr.xm-stuck th.xm-name { box-shadow: inset 4px 0 0 #c62828; }
td.xm-ok { background: #e8f5e9; color: #2e7d32; }
td.xm-warn { background: #fff8e1; color: #ef6c00; }
td.xm-error { background: #ffebee; color: #c62828; }
td.xm-pending { color: #9e9e9e; }
.xm-dot { display: inline-block; width: .6em; height: .6em; border-radius: 50%; margin-right: .4em; background: #bdbdbd; }
.xm-online .xm-dot { background: #2e7d32; }
.xm-hand-raised { color: #c62828; font-weight: 600; }
.xm-reset-note, .xm-reset-pending { color: #1565c0; font-size: 90%; }
.xm-refusals { color: #c62828; }
.xm-muted { color: #9e9e9e; }
.xm-class-board button { font-size: 85%; padding: 1px 6px; }
.xm-dialog { position: fixed; top: 30%; left: 50%; transform: translateX(-50%); background: #fff; z-index: 5;
  border: 2px solid #c62828; padding: 1em 1.5em; box-shadow: 0 4px 16px rgba(0,0,0,.3); max-width: 32em; }
.xm-board-message { margin: .3em 0; min-height: 1.2em; }
.xm-board-message.xm-ok { color: #2e7d32; } .xm-board-message.xm-error { color: #c62828; }
.xm-lang a { margin-left: .6em; }
.xm-finding { padding: 4px 8px; margin: 2px 0; border-left: 4px solid #9e9e9e; }
.xm-finding.xm-ok { border-color: #2e7d32; } .xm-finding.xm-info { border-color: #1565c0; }
.xm-finding.xm-warn { border-color: #ef6c00; background: #fff8e1; }
.xm-finding.xm-error { border-color: #c62828; background: #ffebee; }
.xm-fix { color: #555; font-size: 90%; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_WORDS = ("online", "offline", "never", "reset", "view", "none", "viewing", "refusals", "idle", "help",
          "hand", "hand_clear", "finished", "unit_s", "unit_min", "unit_h", "stuck_hand", "stuck_refused",
          "stuck_idle", "summary_at", "summary_finished", "summary_stuck", "summary_stuck_step",
          "summary_nobody", "summary_online", "summary_problems", "to_all", "message_sent", "message_failed",
          "reset_note", "resets", "reset_pending")


class BoardPage(_Page):
    @web.authenticated
    def get(self) -> None:
        t = self.t
        labels: dict[str, Any] = {
            "steps": {str(s): f"{i}. {t(f'ui.nav.{s}')}" for i, s in enumerate(STEPS, 1)},
            "short": {str(s): str(i) for i, s in enumerate(STEPS, 1)},
            "states": {s: t(f"classroom.board.state.{s}") for s in BOARD_CLASSES},
            "icons": _ICONS,
            "classes": BOARD_CLASSES,
            "words": {w: t(f"classroom.board.{w}") for w in _WORDS},
            "confirm": t("classroom.board.confirm", name="{name}"),
            "done": t("classroom.board.reset_done", name="{name}"),
            "queued": t("classroom.board.reset_queued", name="{name}"),
            "failed": t("classroom.board.reset_failed", name="{name}"),
            "lang": self.lang,
        }
        other = "en" if self.lang == "ja" else "ja"
        head = "".join(f'<th class="xm-col-{s}" title="{_e(labels["steps"][str(s)])}">{i}</th>'
                       for i, s in enumerate(STEPS, 1))
        legend = " ".join(f"{i} {_e(t(f'ui.nav.{s}'))}" for i, s in enumerate(STEPS, 1))
        names = "".join(f'<option value="{_e(a.name)}">{_e(a.name)}</option>' for a in self.board.room().trainees)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(f"""<!DOCTYPE html>
<html lang="{self.lang}"><head><meta charset="utf-8"><title>{_e(t("classroom.board.title"))}</title>
<meta name="xsrf" content="{_e(self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token)}">
<link rel="icon" href="data:,"><style>{_STYLE}</style></head>
<body><div class="xm-lang" style="float:right"><a class="xm-lang-{other}" href="?lang={other}">{_e(text(f"ui.lang.{other}", other))}</a></div>
<h1>{_e(t("classroom.board.title"))}</h1>
<div class="xm-sub">{_e(t("classroom.board.intro"))} {legend}</div>
<div class="xm-class-summary" role="status"></div>
<div class="xm-tools">
<label>{_e(t("classroom.board.sort"))} <select class="xm-sort">
<option value="name">{_e(t("classroom.board.sort_name"))}</option>
<option value="step">{_e(t("classroom.board.sort_step"))}</option>
<option value="stuck">{_e(t("classroom.board.sort_stuck"))}</option></select></label>
<label><input type="checkbox" class="xm-filter-stuck"> {_e(t("classroom.board.filter_stuck"))}</label>
<label>{_e(t("classroom.board.stuck_after"))} <input type="number" min="1" max="240" class="xm-stuck-minutes"></label>
<form class="xm-message-form"><select class="xm-message-to"><option value="">{_e(t("classroom.board.to_all"))}</option>{names}</select>
<input class="xm-message-text" maxlength="{MAX_MESSAGE_CHARS}" placeholder="{_e(t("classroom.board.message_placeholder"))}">
<button class="xm-message-send">{_e(t("classroom.board.message_send"))}</button></form>
</div>
<div class="xm-board-message" role="status"></div>
<table class="xm-class-board"><thead><tr><th class="xm-name">{_e(t("classroom.board.trainee"))}</th>
<th>{_e(t("classroom.board.viewing"))}</th>{head}
<th>{_e(t("classroom.board.refusals"))}</th><th>{_e(t("classroom.board.idle"))}</th>
<th>{_e(t("classroom.board.last_change"))}</th><th>{_e(t("classroom.board.help"))}</th><th></th></tr></thead>
<tbody></tbody></table>
<div class="xm-dialog xm-reset-dialog" hidden><p class="xm-reset-question"></p>
<button class="xm-reset-confirm">{_e(t("classroom.board.reset_yes"))}</button>
<button class="xm-reset-cancel">{_e(t("classroom.board.reset_no"))}</button></div>
<script>const XM = {json.dumps(labels, ensure_ascii=False)};</script>
<script>{_SCRIPT}</script></body></html>""")


_SCRIPT = r"""
(function () {
  const body = document.querySelector('.xm-class-board tbody');
  const summary = document.querySelector('.xm-class-summary');
  const message = document.querySelector('.xm-board-message');
  const dialog = document.querySelector('.xm-reset-dialog');
  const sortBy = document.querySelector('.xm-sort');
  const onlyStuck = document.querySelector('.xm-filter-stuck');
  const minutes = document.querySelector('.xm-stuck-minutes');
  const xsrf = document.querySelector('meta[name=xsrf]').content;
  const W = XM.words;
  let asking = null, last = null, drawn = '';
  const esc = s => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
  const pad = n => String(n).padStart(2, '0');
  function when(iso) {  // one unambiguous local format: 2026-12-06 14:05
    if (!iso) return W.never;
    const d = new Date(iso);
    return isNaN(d) ? iso : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
  function span(seconds) {
    if (seconds === null || seconds === undefined) return '';
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + W.unit_s;
    if (s < 3600) return Math.floor(s / 60) + W.unit_min;
    return Math.floor(s / 3600) + W.unit_h + ' ' + Math.floor((s % 3600) / 60) + W.unit_min;
  }
  const fill = (tpl, vals) => tpl.replace(/\{(\w+)\}/g, (m, k) => (k in vals ? vals[k] : m));
  function row(t) {
    const cells = Object.keys(XM.steps).map(s => {
      const st = t.steps[s] || 'todo';
      return `<td class="xm-step xm-step-${s} ${XM.classes[st]}" title="${esc(XM.steps[s] + ': ' + XM.states[st])}">${XM.icons[st]}</td>`;
    }).join('');
    const stuck = t.stuck.length > 0;
    const why = t.stuck.map(k => W['stuck_' + k]).join(', ');
    const status = t.online ? `<span class="xm-online" title="${esc(W.online)}"><span class="xm-dot"></span></span>`
                            : `<span class="xm-offline" title="${esc(W.offline)}"><span class="xm-dot"></span></span>`;
    const viewing = t.viewing ? `${esc(XM.steps[t.viewing])} <span class="xm-muted">${span(t.on_step_seconds)}</span>`
                              : (t.finished ? esc(W.finished) : '');
    const reason = t.last_refusal ? (t.last_refusal.reason[XM.lang] || '') : '';
    const refusals = t.refusals ? `<span class="xm-refusals" title="${esc(reason)}">${t.refusals}</span> <span class="xm-refusal-reason">${esc(reason)}</span>`
                                : `<span class="xm-refusals xm-muted">0</span>`;
    const help = [];
    if (t.hand) help.push(`<span class="xm-hand-raised">${esc(W.hand)}</span> <button class="xm-hand-clear xm-hand-clear-${t.name}" data-name="${t.name}">${esc(W.hand_clear)}</button>`);
    if (stuck && !t.hand) help.push(`<span class="xm-stuck-why">${esc(why)}</span>`);
    if (t.reset_pending) help.push(`<span class="xm-reset-pending">${esc(W.reset_pending)}</span>`);
    else if (t.reset_note) help.push(`<span class="xm-reset-note">${esc(W.reset_note)}</span>`);
    const title = t.resets ? ` title="${esc(fill(W.resets, {count: t.resets}))}"` : '';
    return `<tr class="xm-trainee xm-trainee-${t.name}${stuck ? ' xm-stuck' : ''}${t.hand ? ' xm-hand-up' : ''}" data-name="${t.name}"${title}>`
      + `<th class="xm-name">${status}<a class="xm-view xm-view-${t.name}" href="trainee/${t.name}?lang=${XM.lang}" target="_blank" title="${esc(W.view)}">${esc(t.name)}</a></th>`
      + `<td class="xm-viewing">${viewing}</td>` + cells
      + `<td class="xm-refusals-cell">${refusals}</td><td class="xm-idle">${t.online ? span(t.idle_seconds) : '<span class="xm-muted">' + esc(W.offline) + '</span>'}</td>`
      + `<td class="xm-last-change">${esc(when(t.last_change))}</td><td class="xm-help" title="${esc(why)}">${help.join(' ')}</td>`
      + `<td><button class="xm-reset xm-reset-${t.name}" data-name="${t.name}">${esc(W.reset)}</button></td></tr>`;
  }
  function drawSummary(s) {
    const at = Object.keys(XM.steps).filter(k => s.at[k]).map(k => `<span>${esc(XM.steps[k])}: <b>${s.at[k]}</b></span>`).join('');
    const stuckStep = s.stuck_step ? fill(W.summary_stuck_step, {step: XM.steps[s.stuck_step], count: s.stuck_step_count}) : W.summary_nobody;
    const probs = s.problems.slice(0, 5).map(p => `<li class="xm-problem xm-${esc(p.status)}">${esc(p.message[XM.lang] || p.check)} <span class="xm-muted">(${p.names.length}: ${esc(p.names.slice(0, 8).join(', '))}${p.names.length > 8 ? ', \u2026' : ''})</span></li>`).join('');
    summary.innerHTML = `<span class="xm-summary-online">${esc(fill(W.summary_online, {online: s.online, total: s.trainees}))}</span>`
      + `<span class="xm-summary-at">${esc(W.summary_at)} ${at}</span>`
      + `<span class="xm-summary-finished">${esc(W.summary_finished)} <b>${s.finished}</b></span>`
      + `<span class="xm-summary-stuck">${esc(W.summary_stuck)} <b>${s.stuck}</b></span>`
      + `<span class="xm-summary-stuck-step">${esc(stuckStep)}</span>`
      + (probs ? `<div class="xm-summary-problems">${esc(W.summary_problems)}<ul>${probs}</ul></div>` : '');
  }
  function order(rows) {
    const by = sortBy.value, out = rows.filter(t => !onlyStuck.checked || t.stuck.length > 0);
    if (by === 'step') out.sort((a, b) => a.done - b.done || a.name.localeCompare(b.name));
    else if (by === 'stuck') out.sort((a, b) => (b.stuck_seconds ?? -1) - (a.stuck_seconds ?? -1) || a.name.localeCompare(b.name));
    return out;
  }
  function draw() {
    if (!last) return;
    const html = order(last.trainees).map(row).join('');
    if (html !== drawn) { body.innerHTML = html; drawn = html; }
    drawSummary(last.summary);
    if (document.activeElement !== minutes) minutes.value = last.stuck_minutes;
  }
  async function post(path, doc) {
    return fetch(path, {method: 'POST', credentials: 'same-origin', body: doc === undefined ? '' : JSON.stringify(doc),
      headers: {'X-XSRFToken': xsrf, 'Content-Type': 'application/json'}});
  }
  async function refresh() {
    try {
      // JupyterHub wants the XSRF token on every cookie-authenticated fetch, GET included.
      const r = await fetch('api/state', {credentials: 'same-origin', cache: 'no-store', headers: {'X-XSRFToken': xsrf}});
      if (r.ok) { last = await r.json(); draw(); }
    } catch (e) { /* the hub restarts: try again */ }
  }
  function say(cls, textValue) { message.className = 'xm-board-message ' + cls; message.textContent = textValue; }
  sortBy.addEventListener('change', draw);
  onlyStuck.addEventListener('change', draw);
  minutes.addEventListener('change', async () => {
    const n = parseInt(minutes.value, 10);
    if (n > 0) { await post('api/settings', {stuck_minutes: n}); refresh(); }
  });
  document.querySelector('.xm-message-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    const to = document.querySelector('.xm-message-to'), words = document.querySelector('.xm-message-text');
    if (!words.value.trim()) return;
    try {
      const r = await post('api/message', {to: to.value, text: words.value});
      if (r.ok) { say('xm-ok', fill(W.message_sent, {to: to.value || W.to_all})); words.value = ''; }
      else say('xm-error', W.message_failed);
    } catch (e) { say('xm-error', W.message_failed); }
  });
  body.addEventListener('click', async ev => {
    const hand = ev.target.closest('button.xm-hand-clear');
    if (hand) { await post('api/hand/' + encodeURIComponent(hand.dataset.name)); refresh(); return; }
    const b = ev.target.closest('button.xm-reset');
    if (!b) return;
    asking = b.dataset.name;
    dialog.querySelector('.xm-reset-question').textContent = XM.confirm.replace('{name}', asking);
    dialog.hidden = false;
  });
  dialog.querySelector('.xm-reset-cancel').addEventListener('click', () => { dialog.hidden = true; asking = null; });
  dialog.querySelector('.xm-reset-confirm').addEventListener('click', async () => {
    const name = asking; dialog.hidden = true; asking = null;
    if (!name) return;
    try {
      const r = await post('api/reset/' + encodeURIComponent(name));
      const s = r.ok ? await r.json() : {};
      if (s.done) say('xm-ok', XM.done.replace('{name}', name));
      else if (s.pending) say('xm-ok', XM.queued.replace('{name}', name));
      else say('xm-error', XM.failed.replace('{name}', name));
    } catch (e) { say('xm-error', XM.failed.replace('{name}', name)); }
    refresh();
  });
  refresh();
  setInterval(refresh, 1000);
})();
"""


class StateHandler(_Page):
    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.board.state()))


class TraineePage(_Page):
    """The trainee's workbook as it is now, read-only: steps, every check
    with its fix, and their recent history."""

    @web.authenticated
    def get(self, name: str) -> None:
        room = self.board.room()
        account = room.account(name)
        if account is None or account.role != "trainee":
            raise web.HTTPError(404)
        t, lang = self.t, self.lang
        report = self.board.reports.get(name)
        rows = []
        if report is None:
            rows.append(f'<p class="xm-pending">{_e(t("classroom.board.never_reported", name=name))}</p>')
        else:
            steps = "".join(
                f'<td class="xm-step xm-step-{s} {BOARD_CLASSES[report["steps"][str(s)]]}">'
                f'{_e(t(f"ui.nav.{s}"))}<br>{_ICONS[report["steps"][str(s)]]} '
                f'{_e(t("classroom.board.state." + report["steps"][str(s)]))}</td>' for s in STEPS)
            rows.append(f'<table class="xm-class-board xm-trainee-{name}"><tr>{steps}</tr></table>')
            rows.append(f'<h2>{_e(t("classroom.board.findings"))}</h2>')
            order = {"error": 0, "warn": 1, "info": 2, "ok": 3}
            for f in sorted(report["findings"], key=lambda f: order.get(f["status"], 4)):
                fix = f'<div class="xm-fix">{_e(f["fix"][lang])}</div>' if f.get("fix") and f["status"] != "ok" else ""
                rows.append(f'<div class="xm-finding xm-{f["status"]} xm-check-{_e(f["check"].replace(".", "-"))}">'
                            f'<b>{_e(t("ui.icon." + f["status"]))}</b> {_e(f["message"][lang])}{fix}</div>')
            rows.append(f'<h2>{_e(t("classroom.board.history"))}</h2><ul class="xm-history">')
            for h in reversed(report["history"]):
                rows.append(f'<li>{_e(_local(h["time"]))} {_e(h["action"])} ({_e(h["result"])})</li>')
            rows.append("</ul>")
        page = self.board.pages.get(name) or {}
        refusals = page.get("refusals") or []
        if refusals:
            rows.append(f'<h2>{_e(t("classroom.board.refused_attempts"))}</h2><ul class="xm-refusal-list">')
            for r in reversed(refusals):
                step = t(f"ui.nav.{r['step']}") if r["step"] in _STEP_NAMES else r["step"]
                rows.append(f'<li>{_e(_local(r["time"]))} {_e(step)}: {_e(r["reason"][lang])}</li>')
            rows.append("</ul>")
        resets = self.board.resets.get(name) or []
        if resets:
            rows.append(f'<h2>{_e(t("classroom.board.reset_history"))}</h2><ul class="xm-reset-list">')
            rows.extend(f'<li>{_e(_local(r))}</li>' for r in reversed(resets))
            rows.append("</ul>")
        received = self.board.received.get(name)
        seen = (dt.datetime.fromtimestamp(received).astimezone().strftime("%Y-%m-%d %H:%M:%S")
                if received else t("classroom.board.never"))
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="3"><title>{_e(t("classroom.board.view_title", name=name))}</title>
<link rel="icon" href="data:,"><style>{_STYLE}</style></head><body class="xm-trainee-view">
<h1>{_e(t("classroom.board.view_title", name=name))}</h1>
<div class="xm-sub">{_e(t("classroom.board.view_intro", seen=seen))}</div>
{''.join(rows)}</body></html>""")


class Puller:
    """Reads trainees' progress from their own servers, with the board
    service's token (the only token their ``xmailnb/progress`` accepts).

    A trainee controls nothing the board shows: their server computes the
    progress from their sandbox, and a token they mint at ``/hub/token``
    reaches neither that route nor the board's record.  Reads of one
    trainee never overlap; a read asked for during one runs once more after.
    """

    def __init__(self, board: Board, hub_url: str, api_token: str) -> None:
        self.board, self.hub_url, self.api_token = board, hub_url, api_token
        self._running: set[str] = set()
        self._again: set[str] = set()
        self.client = httpclient.AsyncHTTPClient()

    async def pull(self, name: str) -> bool:
        if name in self._running:
            self._again.add(name)
            return True
        self._running.add(name)
        try:
            while True:
                self._again.discard(name)
                ok = await self._pull_once(name)
                if name not in self._again:
                    return ok
        finally:
            self._running.discard(name)

    async def pull_many(self, names: list[str]) -> None:
        await asyncio.gather(*(self.pull(n) for n in names))

    async def _pull_once(self, name: str) -> bool:
        asked = self.board.asking(name)
        url = url_path_join(self.hub_url, "user", name, "xmailnb/progress")
        try:
            response = await self.client.fetch(
                url, method="POST", body=json.dumps(asked), raise_error=False, follow_redirects=False,
                headers={"Authorization": f"token {self.api_token}", "Content-Type": "application/json"},
                request_timeout=PULL_TIMEOUT)
            if response.code != 200:
                self.board.lost(name)
                return False
            self.board.take_answer(name, boundedjson.loads(response.body, name=f"{name}: xmailnb/progress"), asked_reset=asked["reset"])
            return True
        except (ValueError, TypeError):
            self.board.lost(name)
            return False
        except Exception as exc:  # the server is gone or the proxy restarts
            log.info("cannot read %s's progress: %s", name, exc)
            self.board.lost(name)
            return False

    async def sweep(self) -> None:
        """Hand over the messages queued from the command line, and read
        again every trainee seen online whose server went quiet (a server
        stopped without a word would stay "online" otherwise)."""
        recipients = self.board.take_queued()
        if recipients:
            await self.pull_many(recipients)
        now = _now()
        quiet = [n for n, is_open in self.board.open.items()
                 if is_open and now - self.board.received.get(n, 0.0) >= ONLINE_SECONDS - 5]
        if quiet:
            await self.pull_many(quiet)


def _trainee(board: Board, name: str) -> None:
    account = board.room().account(name)
    if account is None or account.role != "trainee":
        raise web.HTTPError(404)


def _generation_answered(body: bytes | None) -> int | None:
    """The sandbox's generation in a trainee server's answer to a reset, if it says one."""
    try:
        doc = boundedjson.loads(body or b"", name="xmailnb/reset", max_bytes=4096)
    except ValueError:
        return None
    return _whole(doc.get("generation")) if isinstance(doc, dict) else None


def _whole(value: Any) -> int | None:
    """*value* if it is a JSON integer (not ``true`` or ``false``, which
    Python counts as integers), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ResetHandler(_Page):
    @web.authenticated
    async def post(self, name: str) -> None:
        _trainee(self.board, name)
        hub = self.settings["hub_url"]
        url = url_path_join(hub, "user", name, "xmailnb/reset")
        client = httpclient.AsyncHTTPClient()
        done = False
        try:
            response = await client.fetch(url, method="POST", body=b"", raise_error=False, follow_redirects=False,
                                          headers={"Authorization": f"token {self.settings['api_token']}"},
                                          request_timeout=60)
            done = response.code == 200
            answered = _generation_answered(response.body) if done else None
            if not done:
                log.info("trainee %s's server did not take the reset (HTTP %s): queued", name, response.code)
        except Exception as exc:
            log.info("trainee %s's server cannot be reached (%s): reset queued", name, exc)
        if done:
            self.board.reset_done(name, answered)
            await self.settings["puller"].pull(name)
        else:
            self.board.ask_reset(name)
        log.warning("the trainer reset %s's sandbox%s", name, "" if done else " (queued)")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"done": done, "pending": not done}))


class HandHandler(_Page):
    """``POST api/hand/NAME``: the trainer lowers a raised hand."""

    @web.authenticated
    async def post(self, name: str) -> None:
        _trainee(self.board, name)
        self.board.clear_hand(name)
        await self.settings["puller"].pull(name)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"done": True}))


def _json_body(handler: web.RequestHandler) -> dict[str, Any]:
    try:
        doc = boundedjson.loads(handler.request.body or b"{}", name=handler.request.path)
    except ValueError:
        raise web.HTTPError(400) from None
    if not isinstance(doc, dict):
        raise web.HTTPError(400)
    return doc


class MessageHandler(_Page):
    """``POST api/message`` ``{"to": NAME or "", "text": ...}``: a message to
    one trainee or the whole class, shown in their page."""

    @web.authenticated
    async def post(self) -> None:
        doc = _json_body(self)
        to, words = doc.get("to") or "", doc.get("text")
        if not isinstance(to, str) or not isinstance(words, str) or not words.strip():
            raise web.HTTPError(400)
        names = [a.name for a in self.board.room().trainees]
        if to and to not in names:
            raise web.HTTPError(404)
        entry = self.board.add_message(to, words.strip())
        await self.settings["puller"].pull_many([to] if to else names)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(entry))


class SettingsHandler(_Page):
    """``POST api/settings`` ``{"stuck_minutes": N}``: after how long without
    progress a trainee counts as stuck."""

    @web.authenticated
    def post(self) -> None:
        minutes = _whole(_json_body(self).get("stuck_minutes"))
        if minutes is None:
            raise web.HTTPError(400)
        self.board.set_stuck_minutes(minutes)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"stuck_minutes": self.board.stuck_minutes}))


class ReportHandler(web.RequestHandler):
    """``POST api/report`` from a trainee's server (token only, never cookies):
    "read me again".  Whatever the body says is ignored: the board reads the
    progress from the server itself (:class:`Puller`), so a token the trainee
    minted can at most ask for that read."""

    def check_xsrf_cookie(self) -> None:
        # Only an Authorization header is accepted here, which a browser
        # never sends by itself across sites: no cross-site request to fear.
        return

    async def post(self) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            raise web.HTTPError(403)
        hub_auth: HubOAuth = self.settings["hub_auth"]
        model = await hub_auth.user_for_token(token.strip(), sync=False)
        if not model or model.get("kind", "user") != "user":
            raise web.HTTPError(403)
        name = model["name"]
        # The report scope: a trainee's server token carries it (and so may
        # a token the trainee mints; that is why the body counts for nothing).
        if not ({REPORT_SCOPE, f"{REPORT_SCOPE}!user={name}"} & set(model.get("scopes") or ())):
            raise web.HTTPError(403)
        board: Board = self.settings["board"]
        account = board.room().account(name)
        if account is None or account.role != "trainee":
            raise web.HTTPError(403)
        ioloop.IOLoop.current().spawn_callback(self.settings["puller"].pull, name)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"reset": False}))


def make_app(board: Board, *, prefix: str, hub_auth: HubOAuth, hub_url: str, api_token: str,
             cookie_secret: bytes) -> web.Application:
    puller = Puller(board, hub_url, api_token)
    return web.Application([
        (prefix, BoardPage),
        (url_path_join(prefix, "api/state"), StateHandler),
        (url_path_join(prefix, r"api/reset/([a-z][a-z0-9_-]{0,31})"), ResetHandler),
        (url_path_join(prefix, "api/report"), ReportHandler),
        (url_path_join(prefix, r"api/hand/([a-z][a-z0-9_-]{0,31})"), HandHandler),
        (url_path_join(prefix, "api/message"), MessageHandler),
        (url_path_join(prefix, "api/settings"), SettingsHandler),
        (url_path_join(prefix, r"trainee/([a-z][a-z0-9_-]{0,31})"), TraineePage),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], board=board, puller=puller, hub_auth=hub_auth, hub_url=hub_url, api_token=api_token, cookie_secret=cookie_secret,
        xsrf_cookies=True, login_url=hub_auth.login_url, max_body_size=MAX_REPORT_BYTES + 1024)


def main() -> None:
    """Run the board (JupyterHub starts it as a managed service)."""
    logging.basicConfig(level=logging.WARNING, format="[class-board] %(message)s")
    follow_in_service()  # classroom serve --verbose
    # jupyterhub's XSRF helper warns about every plain GET: not news.
    logging.getLogger("tornado.application").setLevel(logging.ERROR)
    hub_auth = HubOAuth(cache_max_age=60)
    board = Board(Path(os.environ["XMAILNB_CLASS_DIR"]))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/class-board/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8003"))
    app = make_app(board, prefix=prefix, hub_auth=hub_auth, hub_url=os.environ["XMAILNB_CLASS_HUB_URL"],
                   api_token=os.environ["JUPYTERHUB_API_TOKEN"], cookie_secret=os.urandom(32))
    app.listen(url.port or 8003, url.hostname or "127.0.0.1")
    loop = ioloop.IOLoop.current()
    loop.add_callback(ioloop.PeriodicCallback(app.settings["puller"].sweep, 2000).start)
    # JupyterHub starts services with SIGINT ignored, and stops them with it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: loop.add_callback_from_signal(loop.stop))
    loop.start()


if __name__ == "__main__":  # pragma: no cover
    # Run the module's own copy (not __main__'s): the classes that the
    # configuration names by import path must see the same globals.
    from xmailnb.classroom.board import main as _main

    _main()

"""The trainee's class controls: "I'm stuck" and the trainer's messages.

Shown only in a class (:mod:`xmailnb.classroom.singleuser` sets
``XMAILNB_CLASSROOM`` in the server's environment, which the page's kernel
inherits).  The page and the board never talk directly: the page keeps
``class-page.json`` in the trainee's data folder up to date (the step on
screen and since when, the last thing the trainee did, the raised hand, the
refused attempts, the language chosen with the page's switch, which the
next page opens in) and reads ``class-inbox.json``, which the trainee's server
writes when the board reads their progress (:mod:`xmailnb.classroom.report`).

CSS classes (DESIGN.md section 4): ``xm-class-controls``, the button
``xm-raise-hand``, the note ``xm-hand-note`` while the hand is up, and the
trainer's latest message ``xm-class-message``.

The hook in the wizard is two lines: create the controls, put them on the
page (``None`` outside a class).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from .. import clock
from ..classroom.report import CLASS_ENV, MAX_REFUSALS, read_inbox, read_page, refusal, write_page
from ..i18n import LANGUAGES, Msg, format_datetime, page_text as text
from ..mailroot.sandbox import generation
from . import _html
from ._base import Activity, button, set_flag_class

__all__ = ["ClassControls", "class_controls", "CLASS_ENV", "POLL_SECONDS"]

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


def _now() -> str:
    return clock.now().isoformat(timespec="seconds")


class ClassControls(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """"I'm stuck", the trainer's message, and the page's record for the board.

    Attributes:
        data_dir: the trainee's data folder (the sandbox's parent).
        page: what the page last wrote to ``class-page.json``.
        inbox: what the server last wrote to ``class-inbox.json``.
    """

    def __init__(self, wizard: Any, data_dir: Path, *, interval: float = POLL_SECONDS,
                 watch: bool = True) -> None:
        super().__init__()
        self.add_class("xm-class-controls")
        self._wizard = wizard
        self.data_dir = data_dir
        self._lock = threading.RLock()
        self._hooked: set[int] = set()
        self.inbox: dict[str, Any] = {}
        old = read_page(data_dir)
        now = _now()
        # A reload keeps the raised hand and the refusals; the page starts at its first step.
        # "active" comes with the sandbox's generation: the board tells "acted
        # after the reset" by that number, not by comparing two clocks.
        self.page: dict[str, Any] = {"opened": now, "active": now, "active_generation": self._generation(),
                                     "step": getattr(wizard, "current", ""),
                                     "step_since": now, "hand": old.get("hand"),
                                     "hand_raises": _count(old.get("hand_raises")),
                                     "refusals": list(old.get("refusals") or [])[-MAX_REFUSALS:]}
        # The language the trainee chose with the page's switch outlives a reload.
        chosen = old.get("lang")
        if chosen in LANGUAGES and chosen != getattr(wizard, "lang", chosen) and hasattr(wizard, "lang_switch"):
            wizard.lang = chosen
            wizard.lang_switch.value = chosen
            set_flag_class(wizard, "xm-ja", chosen == "ja")
        if chosen in LANGUAGES:
            self.page["lang"] = chosen
        self.raise_hand = button("xm-raise-hand")
        self.raise_hand.on_click(lambda _b: self.raise_my_hand())
        self.hand_note = widgets.HTML()
        self.hand_note.add_class("xm-hand-note")
        self.message = widgets.HTML()
        self.message.add_class("xm-class-message")
        self.message.layout.display = "none"
        row = widgets.HBox([self.raise_hand, self.hand_note])
        row.add_class("xm-class-hand")
        self.children = [self.message, row]
        if hasattr(wizard, "observe"):
            wizard.observe(lambda c: self.on_step(c["new"]), "current")
            wizard.observe(lambda c: self.on_lang(c["new"]), "lang")
        self._save()
        if not self.check():
            self._draw()
        self._stop = threading.Event()
        if watch:
            threading.Thread(target=self._run, name="xmailnb-class-inbox", daemon=True).start()

    # -- what the trainee does -------------------------------------------------------------
    def raise_my_hand(self) -> None:
        with self._lock:
            self.page["hand"] = _now()
            self._acted(self.page["hand"])
            self.page["hand_raises"] = _count(self.page.get("hand_raises")) + 1
            self._save()
        self._draw()

    def on_step(self, step: str) -> None:
        with self._lock:
            now = _now()
            self.page.update(step=step, step_since=now)
            if not getattr(self._wizard, "restarting", False):
                self._acted(now)
            self._save()
        self._hook_steps()

    def on_lang(self, lang: str) -> None:
        with self._lock:
            self.page["lang"] = lang
            self._save()
        self._draw()

    def on_activity(self, step_name: str, step: Any, change: dict[str, Any]) -> None:
        if change["new"] is not Activity.FAILED:
            return
        msgs = list(getattr(getattr(step, "message", None), "msgs", []) or [])
        reason = msgs[0] if msgs else Msg.of("classroom.board.stuck_refused")
        with self._lock:
            entry = refusal(step_name, reason)
            entry["generation"] = self._generation()
            self.page["refusals"] = (self.page["refusals"] + [entry])[-MAX_REFUSALS:]
            self._acted(entry["time"])
            self._save()
        # Back to idle, so that the same refusal once more is seen (and
        # counted) as a new one: a trait notifies only when its value changes.
        step.activity = Activity.IDLE

    def _acted(self, when: str) -> None:
        """The trainee did something at *when*, on the sandbox as it is now."""
        self.page["active"] = when
        self.page["active_generation"] = self._generation()

    def _generation(self) -> int:
        mr = getattr(self._wizard, "mailroot", None)
        return generation(mr.path).number if mr is not None else 0

    def _hook_steps(self) -> None:
        steps = getattr(self._wizard, "steps", None)
        built = steps.built() if steps is not None and hasattr(steps, "built") else {}
        for name, step in built.items():
            if id(step) in self._hooked or not hasattr(step, "observe"):
                continue
            self._hooked.add(id(step))
            step.observe(lambda c, n=name, s=step: self.on_activity(n, s, c), "activity")

    def _save(self) -> None:
        write_page(self.data_dir, self.page)

    # -- what the trainer sends ------------------------------------------------------------
    def check(self) -> bool:
        """Read the inbox once; True when something changed on the page."""
        self._hook_steps()
        inbox = read_inbox(self.data_dir)
        if inbox == self.inbox:
            return False
        with self._lock:
            self.inbox = inbox
            hand, cleared = clock.timestamp(self.page.get("hand")), clock.timestamp(inbox.get("hand_cleared"))
            if hand is not None and cleared is not None and cleared >= hand:
                self.page["hand"] = None
                self._save()
        self._draw()
        return True

    def _run(self) -> None:
        # time.sleep, not Event.wait(timeout): a timed wait hangs under libfaketime.
        while not self._stop.is_set():
            time.sleep(POLL_SECONDS)
            try:
                self.check()
            except Exception:
                log.exception("reading the trainer's messages failed")

    def stop(self) -> None:
        self._stop.set()

    def _draw(self) -> None:
        lang = getattr(self._wizard, "lang", "en")
        with self.hold_trait_notifications():
            self.raise_hand.description = text("classroom.page.raise_hand", lang)
            up = bool(self.page.get("hand"))
            self.raise_hand.disabled = up
            self.hand_note.value = (_html.render("banner", cls="xm-hand-up", role="status",
                                                 text=text("classroom.page.hand_raised", lang)) if up else "")
            messages = self.inbox.get("messages") if isinstance(self.inbox.get("messages"), list) else []
            latest = messages[-1] if messages and isinstance(messages[-1], dict) else None
            if latest is None:
                self.message.value = ""
                self.message.layout.display = "none"
                return
            when = clock.timestamp(latest.get("time"))
            shown = (format_datetime(dt.datetime.fromtimestamp(when, dt.timezone.utc)) if when is not None
                     else str(latest.get("time", "")))
            self.message.value = _html.render("banner", cls="xm-trainer-message", role="status",
                                              text=text("classroom.page.message", lang, time=shown,
                                                        text=str(latest.get("text", ""))))
            self.message.layout.display = None


def class_controls(wizard: Any) -> ClassControls | None:
    """The class controls for *wizard*'s sandbox, or ``None`` outside a class."""
    mr = getattr(wizard, "mailroot", None)
    if not os.environ.get(CLASS_ENV) or mr is None or not mr.is_sandbox:
        return None
    return ClassControls(wizard, mr.path.parent)


def _count(value: Any) -> int:
    """A count kept in class-page.json (anything else reads as 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

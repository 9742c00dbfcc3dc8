"""A banner on the page when the practice sandbox was reset under it.

The sandbox can be reset while a page has it open: by the trainer from the
classroom board, or by ``xmailnb sandbox --reset``.  :func:`watch_resets`
returns a banner (``xm-reset-notice``, hidden until then) and starts a
daemon thread that polls the sandbox's generation
(:func:`xmailnb.mailroot.sandbox.generation`, one small file read a second).  When it
changes, the banner says so, the wizard starts afresh at step 1
(``start_afresh()``) and reads the MailRoot again (``refresh_all()``:
progress, header, stepper, every built step).

The hook in the wizard is two lines: create the banner, put it on the page.
Nothing else of the wizard depends on it, so a redesigned wizard only has to
keep those two lines (or call :func:`watch_resets` with any object that has
``mailroot``, ``lang`` and ``refresh_all()``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import ipywidgets as widgets

from ..i18n import Msg, format_datetime, page_text as text
from ..mailroot.sandbox import Generation, generation
from . import _html

__all__ = ["ResetNotice", "watch_resets", "POLL_SECONDS"]

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


class ResetNotice(widgets.HTML):  # type: ignore[misc]  # ipywidgets ships no type hints
    """The banner, and the thread that watches for a reset.

    Attributes:
        seen: the generation the page was built on (then the newest seen).
        last: the reset that was announced, or ``None``.
    """

    def __init__(self, wizard: Any, interval: float = POLL_SECONDS) -> None:
        super().__init__()
        self.add_class("xm-reset-watch")
        self.layout.display = "none"
        self._wizard = wizard
        self._interval = interval
        self._stop = threading.Event()
        mr = getattr(wizard, "mailroot", None)
        self._path = mr.path if mr is not None and mr.is_sandbox else None
        self.seen = generation(self._path) if self._path is not None else Generation()
        self.last: Generation | None = None
        if hasattr(wizard, "observe"):
            wizard.observe(lambda _c: self._draw(), "lang")
        if self._path is not None:
            threading.Thread(target=self._run, name="xmailnb-reset-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Look once; True when a reset was found (and announced)."""
        if self._path is None:
            return False
        now = generation(self._path)
        if now.number == self.seen.number:
            return False
        self.seen = self.last = now
        self._draw()
        # The page starts again at step 1, with no form, upload or message
        # of the old sandbox left (the wizard's start_afresh), then reads it.
        afresh = getattr(self._wizard, "start_afresh", None)
        if callable(afresh):
            try:
                afresh()
            except Exception:  # a bug boundary: the banner stays, the re-read below still runs
                log.exception("starting the page afresh after a sandbox reset failed")
        refresh = getattr(self._wizard, "refresh_all", None)
        if callable(refresh):
            try:
                refresh()  # progress, header, stepper and every built step, read again
            except Exception:  # a failed re-read must not hide the banner (a bug boundary)
                log.exception("reading the MailRoot again after a sandbox reset failed")
        return True

    def _run(self) -> None:
        # time.sleep, not Event.wait(timeout): a timed wait hangs under
        # libfaketime (make test-future).
        while True:
            time.sleep(self._interval)
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception:
                log.exception("watching the sandbox for a reset failed")

    def _draw(self) -> None:
        if self.last is None:
            return
        lang = getattr(self._wizard, "lang", "en")
        try:
            when = format_datetime(dt.datetime.fromisoformat(self.last.reset_at))
        except ValueError:
            when = self.last.reset_at
        who = Msg.of("sandbox.page.by_trainer") if self.last.by == "trainer" else ""
        self.value = _html.render("banner", cls="xm-reset-notice xm-practice-notice", role="status",
                                  text=text("sandbox.page.reset_notice", lang, time=when, who=who))
        self.layout.display = None


def watch_resets(wizard: Any, interval: float = POLL_SECONDS) -> ResetNotice:
    """The reset banner for *wizard*'s MailRoot (watching only a sandbox)."""
    return ResetNotice(wizard, interval)

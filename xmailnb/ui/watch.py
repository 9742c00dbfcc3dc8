"""Notice changes made to the MailRoot outside this page.

The command line, another page or a trainer can change the MailRoot while a
page shows it.  :class:`MailRootWatch` polls a handful of ``stat`` calls every
two seconds from a daemon thread of the kernel (no file is read) and calls
back when any of them changed: the files xmailnb writes, the audit log every
change appends to, and the progress log of live checks and notices.  The
page's own changes are taken as seen once the page has refreshed
(:meth:`MailRootWatch.mark_seen`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from ..logs import log_unexpected
from ..mailroot import MailRoot
from ..mailroot.layout import REL_WATCHED

__all__ = ["MailRootWatch", "POLL_SECONDS", "watched_files"]

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0

Signature = tuple[tuple[int, int, int] | None, ...]


def watched_files(mr: MailRoot) -> list[str]:
    """The files whose change means the page must read the MailRoot again."""
    return [str(mr.file(rel)) for rel in REL_WATCHED]


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class MailRootWatch:
    """Calls *on_change* (from its thread) when the MailRoot changed.

    Args:
        mr: the MailRoot.
        on_change: what to do then (the wizard reads everything again).
        interval: seconds between two looks; ``None`` starts no thread
            (:meth:`check` is then called by hand, as the tests do).
    """

    def __init__(self, mr: MailRoot, on_change: Callable[[], None], interval: float | None = POLL_SECONDS) -> None:
        self._files = watched_files(mr)
        self._on_change = on_change
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seen = self.signature()
        if interval is not None:
            threading.Thread(target=self._run, args=(interval,), name="xmailnb-mailroot-watch",
                             daemon=True).start()

    def signature(self) -> Signature:
        return tuple(_stat(p) for p in self._files)

    def mark_seen(self, signature: Signature | None = None) -> None:
        """Take *signature* (default: the files as they are now) as seen."""
        with self._lock:
            self._seen = self.signature() if signature is None else signature

    def own_write(self, write: Callable[[], None]) -> None:
        """Run *write* (a change this page makes and already shows, such as
        a line in the progress log) without reading everything again for
        it; a change made elsewhere before it is still noticed."""
        with self._lock:
            unchanged = self.signature() == self._seen
            write()
            if unchanged:
                self._seen = self.signature()

    def check(self) -> bool:
        """Look once; call back and return True when something changed."""
        now = self.signature()
        with self._lock:
            if now == self._seen:
                return False
            self._seen = now
        self._on_change()
        return True

    def stop(self) -> None:
        self._stop.set()

    def _run(self, interval: float) -> None:
        # time.sleep, not Event.wait(timeout): a timed wait hangs under
        # libfaketime (make test-future).
        while True:
            time.sleep(interval)
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception as exc:  # the watch must keep running; the bug goes to the log
                log_unexpected(log, "reading the MailRoot again after a change", exc)

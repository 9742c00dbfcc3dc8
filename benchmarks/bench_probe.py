"""Probe: five endpoints, one that accepts and never answers; total <= T + 0.5 s."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from common import Figure, full_mailroot

TIMEOUT = 2.0


class Silent:
    """Accepts connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def _closed_port() -> int:
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def probe_bound(work: Path, runs: int) -> Figure:
    from xmailnb.checks.probe import probe
    from xmailnb.flows.practice import PracticeServer
    from xmailnb.mailroot.layout import MailRoot

    mr = MailRoot(full_mailroot(work / "probe"))
    server = PracticeServer(mr)
    live = server.start()
    silent = Silent()
    ports = {"smtp": live["smtp"], "submission": live["smtp"], "pop3s": live["pop3s"],
             "smtps": silent.port, "pop3": _closed_port()}
    baseline, value = [], []
    try:
        for _ in range(runs):
            # Baseline: the one endpoint that must cost the whole timeout.
            start = time.perf_counter()
            probe("127.0.0.1", ports={"smtps": silent.port}, timeout=TIMEOUT, mailroot=mr)
            baseline.append(time.perf_counter() - start)
            start = time.perf_counter()
            results = probe("127.0.0.1", ports=ports, timeout=TIMEOUT, mailroot=mr)
            value.append(time.perf_counter() - start)
            assert len(results) == 5
    finally:
        server.stop()
        silent.close()
    return Figure("4 probe-five-endpoints", f"5 endpoints incl. a silent one, timeout T={TIMEOUT:.1f}s "
                  "(baseline: the silent endpoint alone)", "s", baseline, value, TIMEOUT + 0.5, kind="absolute")


def run_all(work: Path, quick: bool) -> list[Figure]:
    return [probe_bound(work, 3 if quick else 7)]

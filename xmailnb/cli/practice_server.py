"""``xmailnb practice-server``: SMTP/POP3S on 127.0.0.1 with the MailRoot's certificate."""

from __future__ import annotations

import argparse
import shlex
import signal
import threading
from typing import Any

from ..errors import InputError
from ..flows.practice import PracticeServer
from ..i18n import Msg
from ..mailroot.sandbox import practice_ports
from .output import Help, mailroot_from


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("practice-server", parents=[common], help=t.of("practice.help.server"),
                       description=t.of("practice.help.server"))
    p.add_argument("--smtp", default=None, metavar="PORT", help=t.of("practice.help.smtp"))
    p.add_argument("--pop3s", default=None, metavar="PORT", help=t.of("practice.help.pop3s"))
    p.set_defaults(func=run)


def _port(name: str, value: str) -> int:
    try:
        port = int(value.strip())
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise InputError.of("practice.server.port", "practice.server.port.fix", field=name, name=name,
                            value=value)
    return port


def _probe_command(path: str, ports: dict[str, int]) -> str:
    listed = ",".join(f"{name}={port}" for name, port in ports.items())
    return f"xmailnb probe --mailroot {shlex.quote(path)} --ports {listed}"


def run(args: argparse.Namespace, out: Any) -> int:
    # Unset: the ports a classroom gave this trainee (XMAILNB_PRACTICE_PORTS), else free ones.
    given = practice_ports()
    smtp = _port("smtp", args.smtp) if args.smtp is not None else given["smtp"]
    pop3s = _port("pop3s", args.pop3s) if args.pop3s is not None else given["pop3s"]
    mr = mailroot_from(args, out)
    server = PracticeServer(mr, smtp_port=smtp, pop3s_port=pop3s)
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        ports = server.start()
        out.say(Msg.of("practice.server.started", path=str(mr.path)))
        out.result(out.t("practice.server.smtp", port=ports["smtp"]))
        out.result(out.t("practice.server.pop3s", port=ports["pop3s"]))
        out.stdout.flush()
        out.say(Msg.of("practice.server.probe", command=_probe_command(str(mr.path), ports)))
        out.stderr.flush()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    out.say(Msg.of("practice.server.stopped"))
    return 0

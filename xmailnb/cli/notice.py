"""``xmailnb notice``: the announcement for mail-client users."""

from __future__ import annotations

import argparse
from typing import Any

from ..flows.notice import notice_host, notice_text, record_shown
from ..i18n import Msg
from .output import Help, mailroot_from


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("notice", parents=[common], help=t.of("notice.help"),
                       description=t.of("notice.help"))
    p.add_argument("--hostname", metavar="NAME", help=t.of("notice.help.hostname"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Any) -> int:
    mr = mailroot_from(args, out)
    hostname, warnings = notice_host(mr, args.hostname)
    for warning in warnings:
        out.say(Msg.of("cli.warning", text=warning))
    out.result(notice_text(mr, out.lang, hostname).rstrip("\n"))
    # For the step progress: the notice was shown for the certificate installed now.
    record_shown(mr)
    return 0

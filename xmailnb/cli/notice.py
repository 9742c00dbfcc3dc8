"""``xmailnb notice``: the announcement for mail-client users."""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import text


def register(sub: Any, common: argparse.ArgumentParser, lang: str) -> None:
    p = sub.add_parser("notice", parents=[common], help=text("notice.help", lang),
                       description=text("notice.help", lang))
    p.add_argument("--hostname", metavar="NAME", help=text("notice.help.hostname", lang))
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Any) -> int:
    from .main import mailroot_from
    from ..i18n import Msg
    from ..flows.notice import notice_host, notice_text, record_shown

    mr = mailroot_from(args, out)
    hostname, warnings = notice_host(mr, args.hostname)
    for warning in warnings:
        out.say(Msg.of("cli.warning", text=warning))
    out.result(notice_text(mr, out.lang, hostname).rstrip("\n"))
    # For the step progress: the notice was shown for the certificate installed now.
    record_shown(mr)
    return 0

"""``xmailnb history``: the archived states of the MailRoot, newest first."""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import Msg
from ..mailroot.store import Store
from .output import EXIT_OK, Help, Out, mailroot_from

__all__ = ["register", "run"]


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("history", parents=[common], help=t("history"), description=t("history"))
    p.add_argument("--json", action="store_true", help=t("json"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Out) -> int:
    mr = mailroot_from(args, out)
    entries = Store(mr).history()
    if args.json:
        out.json([{"id": e.id, "time": e.time, "action": e.action, "files": dict(e.files)} for e in entries])
        return EXIT_OK
    if not entries:
        out.say(Msg.of("store.history.empty"))
        return EXIT_OK
    for e in entries:
        # Messages, not rendered strings: the product's own words are not escaped twice.
        files = [name if digest else Msg.of("cli.history.absent", name=name)
                 for name, digest in sorted(e.files.items())]
        out.result(out.t("cli.history.row", id=e.id, time=e.time[:19].replace("T", " "),
                         action=Msg.of(f"cli.action.{e.action}"), files=files))
    return EXIT_OK

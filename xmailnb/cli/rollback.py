"""``xmailnb rollback``: put an archived state back (the current one is archived first)."""

from __future__ import annotations

import argparse
from typing import Any

from ..flows import actions
from ..i18n import Msg
from .output import EXIT_OK, Help, Out, mailroot_from

__all__ = ["register", "run"]


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("rollback", parents=[common], help=t("rollback"), description=t("rollback"))
    p.add_argument("--to", metavar="ID", help=t("to"))
    p.add_argument("--json", action="store_true", help=t("json"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Out) -> int:
    mr = mailroot_from(args, out)
    target, new_entry = actions.rollback(mr, args.to)
    if new_entry is None:
        out.say(Msg.of("cli.rollback.unchanged", id=target.id))
    else:
        out.say(Msg.of("cli.rollback.done", id=target.id, action=Msg.of(f"cli.action.{target.action}"),
                       new=new_entry.id))
        # What changed and what it means: the same lines the page shows.
        outcome = actions.rollback_outcome(target, new_entry)
        for line in outcome.file_lines(done=True) + outcome.consequences(done=True):
            out.say(line)
    if args.json:
        out.json({"mailroot": str(mr.path), "restored": target.id,
                  "archive": new_entry.id if new_entry else None, "files": dict(target.files)})
    return EXIT_OK

"""``xmailnb settings``: server.tab's TLS variables, shown or changed."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UsageError
from ..flows import actions
from ..i18n import Msg
from ..mailroot.servertab import ServerTab, tls_settings
from .output import EXIT_OK, Help, Out, mailroot_from

__all__ = ["register", "run"]


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("settings", parents=[common], help=t("settings"), description=t("settings"))
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assignments",
                   help=t("set"))
    p.add_argument("--unset", action="append", default=[], metavar="NAME", dest="removals", help=t("unset"))
    p.add_argument("--json", action="store_true", help=t("json"))
    p.set_defaults(func=run)


def _parse_assignment(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise UsageError(Msg.of("cli.settings.bad_assignment", item=item),
                         Msg.of("cli.settings.bad_assignment.fix"))
    return name.strip(), value


def run(args: argparse.Namespace, out: Out) -> int:
    assignments: dict[str, str | None] = dict(_parse_assignment(a) for a in args.assignments)
    assignments.update({name.strip(): None for name in args.removals})
    mr = mailroot_from(args, out)
    if assignments:
        entry = actions.change_settings(mr, assignments)
        if entry is None:
            out.say(Msg.of("cli.settings.unchanged"))
        else:
            out.say(Msg.of("cli.settings.done", names=", ".join(assignments), id=entry.id))
    rows = tls_settings(ServerTab.read(mr.server_tab))
    if args.json:
        out.json({"mailroot": str(mr.path), "settings": [r.to_json(out.lang) for r in rows]})
        return EXIT_OK
    for r in rows:
        value = out.t("cli.settings.unset") if r.value is None else f'"{r.value}"'
        out.result(out.t("cli.settings.row", name=r.name, value=value, meaning=r.meaning))
    return EXIT_OK

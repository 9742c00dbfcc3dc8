"""``xmailnb practice-ca sign``: the practice CA signs the pending CSR."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InputError
from ..flows.practice import MAX_DAYS, sign_pending_csr
from ..mailroot.layout import PRACTICE_DIR
from ..i18n import Msg
from ..pki import chain
from .output import Help, mailroot_from


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("practice-ca", help=t.of("practice.help.ca"),
                       description=t.of("practice.help.ca"))
    actions = p.add_subparsers(dest="practice_action", metavar="ACTION", required=True)
    s = actions.add_parser("sign", parents=[common], help=t.of("practice.help.sign"),
                           description=t.of("practice.help.sign"))
    s.add_argument("--days", default="90", metavar="N", help=t.of("practice.help.days"))
    s.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
    s.set_defaults(func=run)


def _days(value: str) -> int:
    try:
        days = int(value.strip())
    except ValueError:
        days = 0
    if days < 1:
        raise InputError.of("practice.days.invalid", "practice.days.invalid.fix", field="days",
                            value=value, max=MAX_DAYS)
    return days


def run(args: argparse.Namespace, out: Any) -> int:
    days = _days(args.days)
    mr = mailroot_from(args, out)
    issue = sign_pending_csr(mr, days=days)
    if days > MAX_DAYS:
        out.say(Msg.of("practice.days.capped", max=MAX_DAYS))
    ca_dir = str(mr.file(PRACTICE_DIR))
    out.say(Msg.of("practice.ca.created" if issue.ca_created else "practice.ca.reused", path=ca_dir))
    names = chain.hostnames(issue.leaf)
    not_after = issue.leaf.not_valid_after_utc.isoformat(timespec="minutes")
    out.say(Msg.of("practice.signed", names=", ".join(names), not_after=not_after))
    if args.json:
        out.json({"mailroot": str(mr.path), "ca_created": issue.ca_created,
                  "files": {"server": str(issue.server), "intermediate": str(issue.intermediate),
                            "root": str(issue.root), "root_der": str(issue.root_der)},
                  "leaf": chain.describe(issue.leaf)})
    else:
        out.result(out.t("practice.files.server", path=str(issue.server)))
        out.result(out.t("practice.files.intermediate", path=str(issue.intermediate)))
        out.result(out.t("practice.files.root", path=str(issue.root), der=str(issue.root_der)))
    out.say(Msg.of("practice.next", server=str(issue.server), intermediate=str(issue.intermediate)))
    out.say(Msg.of("practice.next.root", root=str(issue.root), der=str(issue.root_der)))
    return 0

"""``xmailnb install``: a certificate (with its chain and key) checked and installed, the old files archived."""

from __future__ import annotations

import argparse
from typing import Any

from ..checks.diagnose import diagnose
from ..flows import actions
from ..i18n import Msg
from .output import (
    EXIT_OK,
    Help,
    Out,
    hostname_option,
    mailroot_from,
    print_preview,
    print_report,
)

__all__ = ["register", "run"]


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("install", parents=[common], help=t("install"), description=t("install"))
    p.add_argument("--cert", required=True, metavar="FILE", help=t("cert"))
    p.add_argument("--chain", action="append", default=[], metavar="FILE", help=t("chain"))
    p.add_argument("--key", metavar="FILE", help=t("key"))
    p.add_argument("--ca", metavar="FILE", help=t("ca"))
    p.add_argument("--passphrase-file", metavar="F", help=t("passphrase_file"))
    p.add_argument("--hostname", metavar="NAME", help=t("hostname"))
    p.add_argument("--allow-incomplete-chain", action="store_true", help=t("allow_incomplete"))
    p.add_argument("--dry-run", action="store_true", help=t("dry_run"))
    p.add_argument("--json", action="store_true", help=t("json"))
    p.set_defaults(func=run)


def _read_passphrase(path: str | None) -> bytes | None:
    if path is None:
        return None
    first = actions.read_user_file(path, 64 * 1024, field="passphrase").split(b"\n", 1)[0]
    # Editors on Windows start a UTF-8 file with a byte-order mark: it is
    # not part of the passphrase.
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    return first[:-1] if first.endswith(b"\r") else first


def run(args: argparse.Namespace, out: Out) -> int:
    passphrase = _read_passphrase(args.passphrase_file)
    cert = actions.Upload.from_path(args.cert)
    chain = [actions.Upload.from_path(p) for p in args.chain]
    key = actions.Upload.from_path(args.key) if args.key else None
    ca = actions.Upload.from_path(args.ca) if args.ca else None
    hostname = hostname_option(args.hostname)
    mr = mailroot_from(args, out)
    plan = actions.plan_install(mr, cert, chain, key=key, ca=ca, passphrase=passphrase, hostname=hostname,
                                allow_incomplete=args.allow_incomplete_chain)
    for warning in plan.warnings:
        out.say(Msg.of("cli.warning", text=warning))
    preview = plan.describe(out.lang)
    if args.dry_run:
        out.say(Msg.of("cli.install.dry_run"))
        if args.json:
            out.json({"mailroot": str(mr.path), "dry_run": True, "plan": preview})
        else:
            print_preview(plan, out)
        return EXIT_OK
    entry = actions.apply_install(mr, plan)
    if entry is None:
        out.say(Msg.of("cli.install.unchanged"))
    else:
        out.say(Msg.of("cli.install.done", id=entry.id))
    report = diagnose(mr, hostname=hostname)
    if args.json:
        out.json({"mailroot": str(mr.path), "installed": True, "archive": entry.id if entry else None,
                  "plan": preview, "diagnosis": report.to_json(out.lang)})
    else:
        print_preview(plan, out)
        print_report(report, out)
    return EXIT_OK

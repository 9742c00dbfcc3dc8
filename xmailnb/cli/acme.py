"""``xmailnb acme issue|renew``: free certificates through ACME (RFC 8555).

``issue`` orders a certificate for the pending CSR and installs it;
``renew`` (for cron or the Windows Task Scheduler) renews it when fewer than
``--days`` days remain.  Exit status: 0 installed, or nothing to do; 1 the
order failed (nothing installed); 2 usage; 3 MailRoot busy.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from ..checks.diagnose import diagnose
from ..errors import UsageError
from ..flows import acme as acmeflow
from ..flows.actions import Upload
from ..i18n import Msg, text
from ..mailroot.acme_state import LETSENCRYPT_STAGING, AcmeSettings, load_settings
from .output import Help, mailroot_from, print_preview, print_report

__all__ = ["register", "run"]


def _positive_int(lang: str, key: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            number = 0
        if number < 1:
            raise argparse.ArgumentTypeError(text(key, lang, value=value))
        return number

    return parse


def _port(lang: str) -> Callable[[str], int]:
    positive = _positive_int(lang, "acme.settings.port")

    def parse(value: str) -> int:
        number = positive(value)
        if number > 65535:
            raise argparse.ArgumentTypeError(text("acme.settings.port", lang, value=value))
        return number

    return parse


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    lang = t.lang

    def h(key: str) -> str | None:
        return t.of(f"acme.cli.help.{key}")

    # --mailroot/--lang belong to the leaf commands: on both levels argparse
    # would let the sub-command's defaults overwrite what was given first.
    p = sub.add_parser("acme", help=h("acme"), description=h("acme"))
    acme_sub = p.add_subparsers(dest="acme_command", metavar="issue|renew", parser_class=type(p))
    p.set_defaults(func=run)

    i = acme_sub.add_parser("issue", parents=[common], help=h("issue"), description=h("issue"))
    where = i.add_mutually_exclusive_group()
    where.add_argument("--directory", metavar="URL", help=h("directory"))
    where.add_argument("--staging", action="store_true", help=h("staging"))
    i.add_argument("--email", metavar="E", help=h("email"))
    i.add_argument("--challenge", choices=("http-01", "dns-01"), help=h("challenge"))
    i.add_argument("--http-port", type=_port(lang), metavar="N", help=h("http_port"))
    i.add_argument("--http-address", metavar="ADDR", help=h("http_address"))
    i.add_argument("--directory-ca", metavar="FILE", help=h("directory_ca"))
    i.add_argument("--agree-tos", action="store_true", help=h("agree_tos"))
    i.add_argument("--dns-hook", metavar="COMMAND", help=h("dns_hook"))
    i.add_argument("--dns-check", action="store_true", help=h("dns_check"))
    i.add_argument("--dns-server", metavar="ADDR[:PORT]", help=h("dns_server"))
    i.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
    i.set_defaults(func=run)

    r = acme_sub.add_parser("renew", parents=[common], help=h("renew"), description=h("renew"))
    r.add_argument("--days", type=_positive_int(lang, "acme.settings.days"), default=30, metavar="N",
                   help=h("days"))
    r.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
    r.set_defaults(func=run)


def _settings(args: argparse.Namespace, mr: Any) -> Any:
    previous = load_settings(mr)
    base = previous or AcmeSettings()
    s = AcmeSettings(accounts=dict(base.accounts))
    s.directory = (LETSENCRYPT_STAGING if args.staging else args.directory) or base.directory
    s.email = args.email if args.email is not None else base.email
    s.challenge = args.challenge or base.challenge
    s.http_port = args.http_port if args.http_port is not None else base.http_port
    s.http_address = args.http_address if args.http_address is not None else base.http_address
    if args.directory_ca:
        s.directory_ca = Upload.from_path(args.directory_ca).data
    elif previous is not None and s.directory == previous.directory:
        s.directory_ca = previous.directory_ca
    s.dns_hook = args.dns_hook if args.dns_hook is not None else base.dns_hook
    s.dns_server = args.dns_server if args.dns_server is not None else base.dns_server
    s.dns_check = bool(args.dns_check or args.dns_server)
    return s


def _progress(out: Any) -> Callable[[Any], None]:
    def show(event: Any) -> None:
        out.say(event.msg)
        if event.kind is acmeflow.EventKind.DNS:
            for record in event.records:
                out.say(Msg.of("acme.cli.dns.record", domain=record.domain, name=record.name,
                               value=record.value))

    return show


def _confirm(out: Any) -> Callable[[Any], bool] | None:
    if not (sys.stdin is not None and sys.stdin.isatty()):
        return None

    def ask(_records: Any) -> bool:
        out.say(Msg.of("acme.cli.dns.prompt"))
        try:
            input()
        except EOFError:
            return False
        return True

    return ask


def _finish(args: argparse.Namespace, out: Any, mr: Any, result: Any, key: str) -> int:
    for warning in result.plan.warnings:
        out.say(Msg.of("cli.warning", text=warning))
    out.say(Msg.of(key, names=", ".join(result.names), not_after=result.not_after.date().isoformat(),
                   id=result.entry.id if result.entry is not None else "-"))
    report = diagnose(mr)
    if args.json:
        out.json({"mailroot": str(mr.path), "installed": True, "acme": result.to_json(out.lang),
                  "diagnosis": report.to_json(out.lang)})
    else:
        print_preview(result.plan, out)
        print_report(report, out)
    return 0


def run(args: argparse.Namespace, out: Any) -> int:
    command = getattr(args, "acme_command", None)
    if command not in ("issue", "renew"):
        raise UsageError(Msg.of("acme.cli.no_command"), Msg.of("acme.cli.no_command.fix"))
    mr = mailroot_from(args, out)
    if command == "issue":
        settings = _settings(args, mr)
        result = acmeflow.issue(mr, settings, agree_tos=args.agree_tos, on_event=_progress(out),
                                confirm_dns=_confirm(out))
        return _finish(args, out, mr, result, "acme.cli.issued")
    outcome = acmeflow.renew(mr, args.days, on_event=_progress(out))
    if not outcome.renewed:
        out.say(outcome.message)
        if args.json:
            out.json({"mailroot": str(mr.path), "renewed": False, "reason": outcome.reason,
                      "not_after": outcome.not_after.isoformat() if outcome.not_after else None,
                      "renew_after": outcome.renew_after.isoformat() if outcome.renew_after else None})
        return 0
    return _finish(args, out, mr, outcome.result, "acme.renew.done")

"""``xmailnb probe``: what the running server sends, and would clients accept it.

The installed server.cert is compared with what is served only when a
MailRoot is named (``--mailroot`` or ``MAIL_ROOT``): the practice sandbox is
never a live server, so comparing with it by default would mislead.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..checks.findings import Finding
from ..checks.probe import (
    check_host,
    format_ports,
    parse_ports,
    passed,
    probe,
    probe_findings,
    reached_server,
    record,
)
from ..errors import XmailnbError
from ..i18n import Msg
from ..mailroot.layout import REL_WORKBOOK, MailRoot
from ..mailroot.workbook import probe_settings, save_probe_settings
from .output import Help, Out, add_probe_options, mailroot_from


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("probe", parents=[common], help=t.of("probe.help"),
                       description=t.of("probe.help.description"))
    add_probe_options(p, t)
    p.add_argument("--servername", metavar="NAME", help=t.of("probe.help.servername"))
    p.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
    p.set_defaults(func=run)


def probe_from_args(args: argparse.Namespace, mr: Any, servername: str | None, out: Any = None) -> list[Any]:
    """Run :func:`xmailnb.checks.probe.probe` with the shared options of *args*.

    With a MailRoot, a host or ports named on the command line are
    remembered for it once the check reached a server (a run that reached
    nothing changes no setting: exit status 1 promises that), and the check
    is recorded for the step progress.  ``--ports default`` probes XMail's
    stock listeners in this very run and forgets the named ones.
    """
    saved = probe_settings(mr) if mr is not None else None
    forget = args.ports is not None and args.ports.strip().lower() == "default"
    ports = parse_ports(args.ports) if args.ports is not None and not forget else None
    host = check_host(args.host) if args.host is not None else ((saved.host if saved else None) or "127.0.0.1")
    results = probe(host, ports=ports, servername=servername, cafile=args.cafile, timeout=args.timeout,
                    mailroot=mr, remembered=not forget)
    if mr is not None:
        if (args.host is not None or args.ports is not None) and reached_server(results):
            _remember(mr, saved, host if args.host is not None else None, ports, forget, out)
        record(mr, results)
    return results


def _remember(mr: Any, saved: Any, host: str | None, ports: dict[str, int] | None, forget: bool, out: Any) -> None:
    new_host = host if host is not None else saved.host
    new_ports = None if forget else (ports if ports is not None else saved.ports)
    try:
        entry = save_probe_settings(mr, host=new_host, ports=new_ports)
    except XmailnbError as exc:  # the check itself ran: say why nothing was remembered
        if out is not None:
            out.say(Msg.of("cli.warning", text=exc.msg))
        return
    if out is None or entry is None:
        return
    if forget:
        out.say(Msg.of("probe.forgotten"))
        return
    what = []
    if host is not None:
        what.append(Msg.of("probe.remembered.host", host=host))
    if ports is not None:
        what.append(Msg.of("probe.remembered.ports", ports=format_ports(ports)))
    out.say(Msg.of("probe.remembered", path=REL_WORKBOOK, what=what))


def findings_from_args(args: argparse.Namespace, mr: MailRoot, servername: str | None,
                       out: Out | None = None) -> list[Finding]:
    """``diagnose --probe``: the live checks as findings ``probe.<endpoint>``."""
    return probe_findings(probe_from_args(args, mr, servername, out))


def print_results(results: list[Any], out: Any) -> None:
    for r in results:
        out.result(out.t("probe.result", status=Msg.of(f"cli.status.{r.status}"), name=r.name, host=r.host,
                         port=r.port, message=r.message))
        for n, cert in enumerate(r.chain, 1):
            out.result(out.t("probe.result.cert", n=n, subject=cert.subject, issuer=cert.issuer))
        if r.fix is not None:
            out.result(f"      -> {r.fix.render(out.lang)}")


def run(args: argparse.Namespace, out: Any) -> int:
    mr = None
    if args.mailroot or os.environ.get("MAIL_ROOT"):
        mr = mailroot_from(args, out)
        out.say(Msg.of("probe.comparing", path=str(mr.path)))
    results = probe_from_args(args, mr, args.servername, out)
    if not results:
        out.say(Msg.of("probe.nothing"))
    if args.json:
        out.json({"endpoints": [r.to_json(out.lang) for r in results]})
    else:
        print_results(results, out)
    return 0 if passed(results) else 1

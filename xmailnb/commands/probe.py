"""``xmailnb probe``: what the running server sends, and would clients accept it.

The installed server.cert is compared with what is served only when a
MailRoot is named (``--mailroot`` or ``MAIL_ROOT``): the practice sandbox is
never a live server, so comparing with it by default would mislead.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..i18n import text


def add_probe_options(p: argparse.ArgumentParser, lang: str, *, host_help: str = "probe.help.host",
                      helps: bool = True) -> None:
    """The options shared by ``probe`` and ``diagnose --probe`` (descriptions
    only with *helps*: ``diagnose`` leaves them out unless --help is asked)."""
    def h(key: str) -> str | None:
        return text(key, lang) if helps else None

    p.add_argument("--host", default="127.0.0.1", metavar="H", help=h(host_help))
    p.add_argument("--ports", metavar="LIST", help=h("probe.help.ports"))
    p.add_argument("--cafile", metavar="F", help=h("probe.help.cafile"))
    p.add_argument("--timeout", default="5", metavar="S", help=h("probe.help.timeout"))


def register(sub: Any, common: argparse.ArgumentParser, lang: str) -> None:
    p = sub.add_parser("probe", parents=[common], help=text("probe.help", lang),
                       description=text("probe.help.description", lang))
    add_probe_options(p, lang)
    p.add_argument("--servername", metavar="NAME", help=text("probe.help.servername", lang))
    p.add_argument("--json", action="store_true", help=text("cli.help.json", lang))
    p.set_defaults(func=run)


def probe_from_args(args: argparse.Namespace, mr: Any, servername: str | None) -> list[Any]:
    """Run :func:`xmailnb.probe.probe` with the shared options of *args*."""
    from ..probe import parse_ports, probe

    ports = parse_ports(args.ports) if args.ports is not None else None
    return probe(args.host, ports=ports, servername=servername, cafile=args.cafile, timeout=args.timeout,
                 mailroot=mr)


def print_results(results: list[Any], out: Any) -> None:
    for r in results:
        out.result(out.t("probe.result", status=out.t(f"cli.status.{r.status}"), name=r.name, host=r.host,
                         port=r.port, message=r.message.render(out.lang)))
        for n, cert in enumerate(r.chain, 1):
            out.result(out.t("probe.result.cert", n=n, subject=cert["subject"], issuer=cert["issuer"]))
        if r.fix is not None:
            out.result(f"      -> {r.fix.render(out.lang)}")


def run(args: argparse.Namespace, out: Any) -> int:
    from ..cli import mailroot_from
    from ..i18n import Msg

    mr = None
    if args.mailroot or os.environ.get("MAIL_ROOT"):
        mr = mailroot_from(args, out)
        out.say(Msg.of("probe.comparing", path=str(mr.path)))
    results = probe_from_args(args, mr, args.servername)
    if args.json:
        out.json({"endpoints": [r.to_json(out.lang) for r in results]})
    else:
        print_results(results, out)
    return 1 if any(r.status == "error" for r in results) else 0

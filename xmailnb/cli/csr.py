"""``xmailnb csr``: a new key and CSR in sslconf/ (or a renewal CSR that keeps the installed key)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import XmailnbError
from ..flows import actions
from ..i18n import Msg
from ..mailroot.layout import MailRoot
from ..pki import csr as csrmod
from .output import EXIT_OK, Help, Out, mailroot_from

__all__ = ["register", "run"]


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("csr", parents=[common], help=t("csr"), description=t("csr"))
    p.add_argument("--country", required=True, metavar="C", help=t("country"))
    p.add_argument("--state", required=True, metavar="S", help=t("state"))
    p.add_argument("--locality", required=True, metavar="L", help=t("locality"))
    p.add_argument("--org", required=True, metavar="O", help=t("org"))
    p.add_argument("--unit", default="", metavar="U", help=t("unit"))
    p.add_argument("--cn", required=True, metavar="NAME", help=t("cn"))
    p.add_argument("--aliases", default="", metavar='"A B"', help=t("aliases"))
    p.add_argument("--email", default="", metavar="E", help=t("email"))
    p.add_argument("--key-type", default="rsa", metavar="rsa|ec", help=t("key_type"))
    p.add_argument("--key-size", default="2048", metavar="2048|3072|4096", help=t("key_size"))
    p.add_argument("--curve", default="P-256", metavar="P-256|P-384", help=t("curve"))
    p.add_argument("--memo", default="", metavar="TEXT", help=t("memo"))
    p.add_argument("--renew", "--reuse-key", action="store_true", dest="renew", help=t("renew"))
    p.add_argument("--json", action="store_true", help=t("json"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Out) -> int:
    values = {"country": args.country, "state": args.state, "locality": args.locality, "org": args.org,
              "unit": args.unit, "cn": args.cn, "aliases": args.aliases, "email": args.email,
              "keytype": args.key_type, "keysize": args.key_size, "curve": args.curve, "memo": args.memo}
    if args.renew:
        # The installed key is kept: its type and size are what they are.
        values.update(keytype="rsa", keysize="2048", curve="P-256")
    request = csrmod.request_from_values(values)
    mr = mailroot_from(args, out)
    result = actions.create_csr(mr, request, reuse_key=args.renew)
    d = result.description
    if result.entry is not None and result.replaced_pending:
        out.say(Msg.of("cli.csr.archived", id=result.entry.id))
    out.say(Msg.of("cli.csr.written", key=mr.rel_pending_key, csr=mr.rel_pending_csr))
    if result.reused_key:
        out.say(Msg.of("csr.renew.kept", key=d["key"], pending=mr.rel_pending_key))
    elif _renewal_possible(mr):
        out.say(Msg.of("csr.renew.hint"))
    if args.json:
        out.json({"mailroot": str(mr.path), "csr": result.pem.decode("ascii"), "sha256": d["sha256"],
                  "subject": {k: d.get(k) for k in ("country", "state", "locality", "org", "unit", "cn",
                                                    "email")},
                  "sans": d["sans"], "key": d["key"], "public_key_sha256": d["public_key_sha256"],
                  "key_source": "installed" if result.reused_key else "new",
                  "files": {"key": mr.rel_pending_key, "csr": mr.rel_pending_csr},
                  "archive": result.entry.id if result.entry else None})
    else:
        out.result(result.pem.decode("ascii").rstrip("\n"))
        out.result(out.t("cli.csr.fingerprint", sha256=d["sha256"]))
        out.result(out.t("cli.csr.names", names=", ".join(d["sans"]), key=d["key"]))
        out.say(Msg.of("cli.csr.next"))
    return EXIT_OK


def _renewal_possible(mr: MailRoot) -> bool:
    try:
        actions.renewal_key(mr)
    except XmailnbError:
        return False
    return True

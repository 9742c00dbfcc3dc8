"""``xmailnb diagnose``: every check of the MailRoot, optionally with the live probe."""

from __future__ import annotations

import argparse
from typing import Any

from ..checks.diagnose import diagnose
from ..checks.progress import record_diagnosis
from ..checks.display import with_display_forms
from ..status import Status
from .output import (
    EXIT_OK,
    EXIT_REFUSED,
    Help,
    Out,
    add_probe_options,
    hostname_option,
    mailroot_from,
    print_report,
)

__all__ = ["register", "run"]


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("diagnose", parents=[common], help=t("diagnose"), description=t("diagnose"))
    p.add_argument("--hostname", metavar="NAME", help=t("hostname"))
    p.add_argument("--json", action="store_true", help=t("json"))
    p.add_argument("--probe", action="store_true", help=t.of("probe.help.probe"))
    add_probe_options(p, t, host_help="probe.help.diag_host")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Out) -> int:
    mr = mailroot_from(args, out)
    hostname = hostname_option(args.hostname)
    extra = None
    if args.probe:
        # The live checks become findings probe.<endpoint> of the same report.
        # Imported here, not above: the network code (sockets, threads,
        # pyOpenSSL) is for --probe only, and every plain diagnosis would
        # pay for it at start-up (docs/performance.md, figure 2).
        from . import probe as probe_command

        extra = probe_command.findings_from_args(args, mr, hostname, out)
    report = diagnose(mr, hostname=hostname, extra=extra)
    # Step 1's mark: a diagnosis of this MailRoot has been run.
    record_diagnosis(mr, where="cli")
    if args.json:
        doc = report.to_json(out.lang)
        # Names stay as the certificates say (JSON is data); each finding
        # also gets their escaped twins (subject_display, names_display),
        # safe for a script to print.
        doc["findings"] = [with_display_forms(f) for f in doc["findings"]]
        out.json(doc)
    else:
        print_report(report, out)
    return EXIT_REFUSED if report.count(Status.ERROR) else EXIT_OK

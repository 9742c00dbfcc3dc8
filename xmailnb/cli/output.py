"""Where a command writes, and what every command shares.

Results go to stdout (one JSON document with ``--json``), messages to
stderr, in the user's language.  :class:`Help` gives the option
descriptions from the catalog, and only when ``--help`` is asked: a normal
run reads no help text.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
from typing import TYPE_CHECKING, Any, TextIO

from ..checks.findings import Report
from ..errors import XmailnbError
from ..i18n import Msg, text
from ..mailroot.layout import MailRoot
from ..mailroot.resolve import describe, resolve
from ..mailroot.store import recover_interrupted
from ..pki.csr import normalize_hostname_option
from ..status import Status

if TYPE_CHECKING:  # annotations only: the diagnosis does not need the flows
    from ..flows.actions import InstallPlan

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "EXIT_BUSY", "Help", "Out", "OutputError", "mailroot_from",
           "hostname_option", "print_report", "print_preview", "add_probe_options"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


class Help:
    """Option descriptions from the catalog, or ``None`` when no help is
    shown (argparse prints them only for --help).

    ``t("json")`` is ``cli.help.json``; ``t.of(key)`` any catalog entry.
    """

    def __init__(self, lang: str, enabled: bool) -> None:
        self.lang, self.enabled = lang, enabled

    def __call__(self, key: str, **params: Any) -> str | None:
        return self.of(f"cli.help.{key}", **params)

    def of(self, key: str, **params: Any) -> str | None:
        return text(key, self.lang, **params) if self.enabled else None


class OutputError(Exception):
    """Writing to stdout failed (closed, full, a reader gone)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _write_line(stream: TextIO | None, line: str) -> None:
    if stream is None:  # started with the descriptor closed: sys.stdout is None
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    try:
        stream.write(line + "\n")
    except UnicodeEncodeError:
        # A terminal or pipe that cannot show Japanese (or a control
        # character): backslash escapes rather than a failed command.
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write((line + "\n").encode(encoding, "backslashreplace").decode(encoding, "replace"))


# JSON strings may carry characters a terminal acts on or hides (C1
# controls, bidi overrides); json escapes only C0, so the rest is escaped
# here, which keeps the document valid JSON.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
                          "\u2060-\u206f\ufeff\ufff9-\ufffb]")


class Out:
    """Where the command writes: results to stdout, messages to stderr."""

    def __init__(self, lang: str, stdout: TextIO, stderr: TextIO, *, want_json: bool = False) -> None:
        self.lang, self.stdout, self.stderr = lang, stdout, stderr
        self.want_json = want_json
        self.json_written = False

    def t(self, key: str, /, **params: Any) -> str:
        return text(key, self.lang, **params)

    def say(self, msg: Msg | str) -> None:
        try:
            _write_line(self.stderr, msg if isinstance(msg, str) else msg.render(self.lang))
            self.stderr.flush()
        except (OSError, ValueError):
            pass  # nowhere left to tell; the exit status still says it

    def result(self, line: str = "") -> None:
        try:
            _write_line(self.stdout, line)
        except (OSError, ValueError) as exc:
            raise OutputError(exc) from None

    def json(self, doc: Any) -> None:
        body = json.dumps(doc, ensure_ascii=False, indent=2, default=str)
        body = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)
        self.json_written = True
        self.result(body)

    def flush(self) -> None:
        try:
            if self.stdout is not None:
                self.stdout.flush()
        except (OSError, ValueError) as exc:
            raise OutputError(exc) from None

    def error(self, exc: XmailnbError) -> None:
        """Report a refusal: the message on stderr and, with --json, one
        JSON document saying the same, so scripts never parse an empty stdout."""
        self.say(exc.render(self.lang))
        if self.want_json and not self.json_written:
            self.json({"error": {"exit_code": exc.exit_code, "key": exc.msg.key,
                                 "message": exc.msg.render(self.lang),
                                 "fix": exc.fix.render(self.lang) if exc.fix else "",
                                 "field": exc.field}})


def mailroot_from(args: argparse.Namespace, out: Out) -> MailRoot:
    """Resolve ``--mailroot`` (else MAIL_ROOT, else the sandbox) and say on
    stderr when the sandbox is used."""
    mr = resolve(args.mailroot, recover=False)
    if mr.is_sandbox:
        out.say(describe(mr))
    # A change a killed command left half-done is finished or undone first.
    repaired = recover_interrupted(mr)
    if repaired is not None:
        out.say(repaired)
    return mr


def hostname_option(value: str | None) -> str | None:
    """``--hostname`` as clients use it (IDN -> A-labels), or ``None`` when not given."""
    return normalize_hostname_option(value) if value else None


def print_report(report: Report, out: Out) -> None:
    """A diagnosis as text: one line per finding, its fix below it."""
    out.result(out.t("cli.diagnose.header", path=str(report.mailroot.path)))
    for f in report.findings:
        label = out.t(f"cli.status.{f.status}")
        out.result(f"[{label}] {f.check}: {f.message.render(out.lang)}")
        if f.fix is not None and f.status is not Status.OK:
            out.result(f"      -> {f.fix.render(out.lang)}")
    out.result(report.summary().render(out.lang))


def print_preview(plan: InstallPlan, out: Out) -> None:
    """An install plan as text: the install preview's one model
    (:meth:`xmailnb.flows.actions.InstallPlan.preview`), as the page shows it."""
    for line in plan.preview():
        out.result(line.render(out.lang))




def add_probe_options(p: argparse.ArgumentParser, t: Help, *, host_help: str = "probe.help.host") -> None:
    """The options shared by ``probe`` and ``diagnose --probe``."""
    p.add_argument("--host", default=None, metavar="H", help=t.of(host_help))
    p.add_argument("--ports", metavar="LIST", help=t.of("probe.help.ports"))
    p.add_argument("--cafile", metavar="F", help=t.of("probe.help.cafile"))
    p.add_argument("--timeout", default="5", metavar="S", help=t.of("probe.help.timeout"))

"""The ``xmailnb`` command: the whole real job on a MailRoot from a terminal.

Exit status: 0 success; 1 refused (invalid input, or diagnosis errors; nothing
changed); 2 usage error or unusable MailRoot; 3 MailRoot busy.  ``--json``
prints exactly one JSON document on stdout; messages go to stderr.

A change that was saved stays a success even when its result cannot be
printed afterwards (stdout closed or full): the command says on stderr that
the change was made and exits 0.  Text a terminal cannot encode is written
with backslash escapes instead of failing.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from typing import NoReturn, Sequence, TextIO

from ..errors import InputError, UsageError, XmailnbError
from ..i18n import LANGUAGES, Msg, detect_language
from ..logs import log_unexpected, stderr_level, to_stderr
from ..mailroot.store import committed_entries
from .output import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Help, Out, OutputError

__all__ = ["main", "build_parser", "COMMANDS"]

log = logging.getLogger(__name__)

#: Every command, and the module that implements it: the one place a
#: command is registered.  Each module has ``register(sub, common, t)``,
#: which adds its sub-parser and sets ``func``, and ``run(args, out)``.
COMMANDS: dict[str, str] = {
    "diagnose": "xmailnb.cli.diagnose",
    "csr": "xmailnb.cli.csr",
    "install": "xmailnb.cli.install",
    "history": "xmailnb.cli.history",
    "rollback": "xmailnb.cli.rollback",
    "settings": "xmailnb.cli.settings",
    "acme": "xmailnb.cli.acme",
    "classroom": "xmailnb.cli.classroom",
    "notice": "xmailnb.cli.notice",
    "practice-ca": "xmailnb.cli.practice_ca",
    "practice-server": "xmailnb.cli.practice_server",
    "probe": "xmailnb.cli.probe",
    "sandbox": "xmailnb.cli.sandbox",
    "serve": "xmailnb.cli.serve",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as :class:`UsageError` (exit 2)
    in the user's language instead of printing and exiting itself."""

    lang = "en"

    def error(self, message: str) -> NoReturn:
        raise UsageError(Msg.of("cli.usage_error", detail=message, prog=self.prog),
                         Msg.of("cli.usage_error.fix", prog=self.prog))


def _scan_lang(argv: Sequence[str]) -> tuple[str, str | None]:
    """Find --lang anywhere on the line before parsing, so that even usage
    errors come out in the chosen language."""
    lang: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            lang = argv[i + 1]
        elif arg.startswith("--lang="):
            lang = arg.split("=", 1)[1]
    if lang is None:
        return detect_language(), None
    if lang.lower() in LANGUAGES:
        return lang.lower(), None
    return detect_language(), lang


def build_parser(lang: str, only: str | None = None, *, with_help: bool = True) -> argparse.ArgumentParser:
    """The argument parser, in *lang*.

    With *only* naming a command, just that command's sub-parser is built
    (and just its module imported): the full set is needed only for help and
    for unknown commands.  Without *with_help* the option descriptions are
    left out (they show only with --help), so a normal run reads no help
    catalog: start-up time is part of the product.
    """
    t = Help(lang, with_help)
    parser = _Parser(prog="xmailnb", description=t("description"))
    # The common options are accepted before the command (`xmailnb --lang ja
    # diagnose`) and after it.  After it they default to SUPPRESS: argparse
    # copies a sub-parser's defaults over what was given before the command.
    parser.add_argument("--mailroot", metavar="DIR", default=None, help=t("mailroot"))
    parser.add_argument("--lang", choices=LANGUAGES, default=None, help=t("lang"))
    parser.add_argument("--verbose", action="store_true", help=t("verbose"))
    common = _Parser(add_help=False)
    common.add_argument("--mailroot", metavar="DIR", default=argparse.SUPPRESS, help=t("mailroot"))
    common.add_argument("--lang", choices=LANGUAGES, default=argparse.SUPPRESS, help=t("lang"))
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=t("verbose"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # The one place modules are imported on demand: a command's module
    # (and what it imports) loads only when that command runs, so start-up
    # does not grow with the number of commands.
    for name in [only] if only in COMMANDS else COMMANDS:
        importlib.import_module(COMMANDS[name]).register(sub, common, t)
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (never raises)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out_stream = stdout or sys.stdout
    err_stream = stderr or sys.stderr
    lang, bad_lang = _scan_lang(argv)
    for stream in {out_stream, err_stream} & {sys.stdout, sys.stderr}:
        # Never fail on a character the terminal's encoding lacks.
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass
    out = Out(lang, out_stream, err_stream, want_json="--json" in argv)
    commits_before = _commit_count()
    try:
        if bad_lang is not None:
            raise UsageError(Msg.of("cli.lang.unknown", value=bad_lang), Msg.of("cli.lang.unknown.fix"))
        command = argv[0] if argv and not argv[0].startswith("-") else None
        parser = build_parser(lang, only=command, with_help=any(a in ("-h", "--help") for a in argv))
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version print and exit 0
            return int(exc.code or 0)
        if args.command is None:
            parser.print_help(err_stream)
            return EXIT_USAGE
        func = args.func
        # The log on stderr only when asked for (--verbose, XMAILNB_LOG),
        # and only while the command runs: an internal error below still
        # ends as one line naming the log file, never a traceback.
        with to_stderr(stderr_level(args.verbose), err_stream):
            with warnings.catch_warnings(record=True) as caught:
                # Library warnings (a file path and a Python class name) are not
                # messages for an administrator: the code turns what matters
                # into catalog messages; the rest goes to the debug log.
                warnings.simplefilter("always")
                code = int(func(args, out))
                out.flush()
            for w in caught:
                log.debug("warning: %s", w.message)
        return code
    except XmailnbError as exc:
        try:
            out.error(exc)
        except OutputError:
            _silence(out_stream)
        return exc.exit_code
    except KeyboardInterrupt:
        out.say(Msg.of("cli.interrupted"))
        return 130
    except (OutputError, BrokenPipeError) as exc:
        error = exc.error if isinstance(exc, OutputError) else exc
        _silence(out_stream)
        saved = _commits_since(commits_before)
        if saved:
            # The change is on disk: printing its result is what failed.
            out.say(Msg.of("cli.committed.output_failed", changes=saved, error=_describe(error)))
            return EXIT_OK
        if isinstance(error, BrokenPipeError):
            # The reader went away (e.g. `| head`): stop quietly, like other tools.
            return EXIT_OK
        out.say(Msg.of("cli.output_failed", error=_describe(error)))
        return EXIT_REFUSED
    except Exception as exc:  # a bug: one clear line, never a traceback
        if os.environ.get("XMAILNB_DEBUG"):
            raise
        where = log_unexpected(log, f"running {argv[:1]}", exc)
        saved = _commits_since(commits_before)
        msg = (Msg.of("cli.internal.committed", error=_describe(exc), changes=saved) if saved
               else Msg.of("cli.internal", error=_describe(exc)))
        try:
            # Still exactly one JSON document with --json: scripts never
            # parse an empty stdout.
            out.error(InputError(msg, Msg.of("cli.internal.fix", log=str(where) if where else "-")))
        except OutputError:
            _silence(out_stream)
        return EXIT_REFUSED


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _commit_count() -> int:
    return len(committed_entries())


def _commits_since(count: int) -> str:
    """The changes this run saved, as "action (archive id)" for a message."""
    return ", ".join(f"{e.action} ({e.id})" for e in committed_entries(count))


def _silence(stream: TextIO) -> None:
    """Point a broken stdout at the null device, so that the interpreter's
    last flush at exit does not fail again on what is still buffered."""
    if stream is not sys.stdout or stream is None:
        return
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

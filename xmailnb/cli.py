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
import errno
import json
import os
import re
import sys
from typing import Any, Callable, NoReturn, Sequence, TextIO

from .errors import InputError, UsageError, XmailnbError
from .i18n import LANGUAGES, Msg, detect_language, text

__all__ = ["main", "build_parser", "Out", "mailroot_from", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "EXIT_BUSY"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3
_ICONS = {"ok": "OK", "info": "i", "warn": "!", "error": "X"}


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


_CORE = ("diagnose", "csr", "install", "history", "rollback", "settings")


class _Help:
    """Option descriptions from the catalog, or ``None`` when no help is
    shown (argparse prints them only for --help)."""

    def __init__(self, lang: str, enabled: bool) -> None:
        self.lang, self.enabled = lang, enabled

    def __call__(self, key: str, **params: Any) -> str | None:
        return text(f"cli.help.{key}", self.lang, **params) if self.enabled else None


def build_parser(lang: str, only: str | None = None, *, with_help: bool = True) -> argparse.ArgumentParser:
    """The argument parser, in *lang*.

    With *only* naming a command, just that command's sub-parser is built
    (and just its module imported): the full set is needed only for help and
    for unknown commands.  Without *with_help* the option descriptions are
    left out (they show only with --help), so a normal run reads no help
    catalog: start-up time is part of the product.
    """
    t = _Help(lang, with_help)
    parser = _Parser(prog="xmailnb", description=t("description"))
    # The common options are accepted before the command (`xmailnb --lang ja
    # diagnose`) and after it.  After it they default to SUPPRESS: argparse
    # copies a sub-parser's defaults over what was given before the command.
    parser.add_argument("--mailroot", metavar="DIR", default=None, help=t("mailroot"))
    parser.add_argument("--lang", choices=LANGUAGES, default=None, help=t("lang"))
    common = _Parser(add_help=False)
    common.add_argument("--mailroot", metavar="DIR", default=argparse.SUPPRESS, help=t("mailroot"))
    common.add_argument("--lang", choices=LANGUAGES, default=argparse.SUPPRESS, help=t("lang"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    from . import commands

    extension = commands.module_for(only) if only else None
    wanted = [only] if only in _CORE else ([] if extension else list(_CORE))
    for name in wanted:
        _BUILDERS[name](sub, common, t, lang)
    # Further commands live in xmailnb/commands/<name>.py, each with
    # register(sub, common, lang) that sets `func`; their own imports stay
    # lazy so that start-up cost does not grow with the number of commands.
    if extension is not None:
        extension.register(sub, common, lang)
    elif only not in _CORE:
        for module in commands.modules():
            module.register(sub, common, lang)
    return parser


def _add_diagnose(sub: Any, common: argparse.ArgumentParser, t: _Help, lang: str) -> None:
    p = sub.add_parser("diagnose", parents=[common], help=t("diagnose"), description=t("diagnose"))
    p.add_argument("--hostname", metavar="NAME", help=t("hostname"))
    p.add_argument("--json", action="store_true", help=t("json"))
    from .commands.probe import add_probe_options

    p.add_argument("--probe", action="store_true", help=text("probe.help.probe", lang) if t.enabled else None)
    add_probe_options(p, lang, host_help="probe.help.diag_host", helps=t.enabled)


def _add_csr(sub: Any, common: argparse.ArgumentParser, t: _Help, lang: str) -> None:
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


def _add_install(sub: Any, common: argparse.ArgumentParser, t: _Help, lang: str) -> None:
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


def _add_history(sub: Any, common: argparse.ArgumentParser, t: _Help, lang: str) -> None:
    p = sub.add_parser("history", parents=[common], help=t("history"), description=t("history"))
    p.add_argument("--json", action="store_true", help=t("json"))


def _add_rollback(sub: Any, common: argparse.ArgumentParser, t: _Help, lang: str) -> None:
    p = sub.add_parser("rollback", parents=[common], help=t("rollback"), description=t("rollback"))
    p.add_argument("--to", metavar="ID", help=t("to"))
    p.add_argument("--json", action="store_true", help=t("json"))


def _add_settings(sub: Any, common: argparse.ArgumentParser, t: _Help, lang: str) -> None:
    p = sub.add_parser("settings", parents=[common], help=t("settings"), description=t("settings"))
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assignments",
                   help=t("set"))
    p.add_argument("--unset", action="append", default=[], metavar="NAME", dest="removals", help=t("unset"))
    p.add_argument("--json", action="store_true", help=t("json"))


_BUILDERS: dict[str, Callable[[Any, argparse.ArgumentParser, _Help, str], None]] = {
    "diagnose": _add_diagnose,
    "csr": _add_csr,
    "install": _add_install,
    "history": _add_history,
    "rollback": _add_rollback,
    "settings": _add_settings,
}


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


def mailroot_from(args: argparse.Namespace, out: Out) -> Any:
    """Resolve ``--mailroot`` (else MAIL_ROOT, else the sandbox) and say on
    stderr when the sandbox is used."""
    from .mailroot import describe, recover_interrupted, resolve

    mr = resolve(args.mailroot, recover=False)
    if mr.is_sandbox:
        out.say(describe(mr))
    # A change a killed command left half-done is finished or undone first.
    repaired = recover_interrupted(mr)
    if repaired is not None:
        out.say(repaired)
    return mr


def _print_report(report: Any, out: Out) -> None:
    out.result(out.t("cli.diagnose.header", path=str(report.mailroot.path)))
    for f in report.findings:
        label = out.t(f"cli.status.{f.status}")
        out.result(f"[{label}] {f.check}: {f.message.render(out.lang)}")
        if f.fix is not None and f.status in ("warn", "error", "info"):
            out.result(f"      -> {f.fix.render(out.lang)}")
    out.result(report.summary().render(out.lang))


def _normalise_hostname(value: str | None) -> str | None:
    if not value:
        return None
    from .actions import normalize_hostname_option

    return normalize_hostname_option(value)


def cmd_diagnose(args: argparse.Namespace, out: Out) -> int:
    from .diagnose import diagnose

    mr = mailroot_from(args, out)
    hostname = _normalise_hostname(args.hostname)
    extra = None
    if args.probe:
        # The live checks become findings probe.<endpoint> of the same report.
        from .commands.probe import probe_from_args
        from .probe import probe_findings

        extra = probe_findings(probe_from_args(args, mr, hostname, out))
    report = diagnose(mr, hostname=hostname, extra=extra)
    if args.json:
        out.json(report.to_json(out.lang))
    else:
        _print_report(report, out)
    return EXIT_REFUSED if report.count("error") else EXIT_OK


def cmd_csr(args: argparse.Namespace, out: Out) -> int:
    from . import actions, csr as csrmod

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


def _renewal_possible(mr: Any) -> bool:
    from .actions import renewal_key

    try:
        renewal_key(mr)
    except XmailnbError:
        return False
    return True


def _read_passphrase(path: str | None) -> bytes | None:
    if path is None:
        return None
    from .actions import read_user_file

    first = read_user_file(path, 64 * 1024, field="passphrase").split(b"\n", 1)[0]
    # Editors on Windows start a UTF-8 file with a byte-order mark: it is
    # not part of the passphrase.
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    return first[:-1] if first.endswith(b"\r") else first


def cmd_install(args: argparse.Namespace, out: Out) -> int:
    from . import actions
    from .diagnose import diagnose

    passphrase = _read_passphrase(args.passphrase_file)
    cert = actions.Upload.from_path(args.cert)
    chain = [actions.Upload.from_path(p) for p in args.chain]
    key = actions.Upload.from_path(args.key) if args.key else None
    ca = actions.Upload.from_path(args.ca) if args.ca else None
    hostname = _normalise_hostname(args.hostname)
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
            _print_preview(plan, out)
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
        _print_preview(plan, out)
        _print_report(report, out)
    return EXIT_OK


def _print_preview(plan: Any, out: Out) -> None:
    # The install preview's one model (actions.InstallPlan.preview), as the page shows it.
    for line in plan.preview():
        out.result(line.render(out.lang))


def cmd_history(args: argparse.Namespace, out: Out) -> int:
    from .store import Store

    mr = mailroot_from(args, out)
    entries = Store(mr).history()
    if args.json:
        out.json([{"id": e.id, "time": e.time, "action": e.action, "files": dict(e.files)} for e in entries])
        return EXIT_OK
    if not entries:
        out.say(Msg.of("store.history.empty"))
        return EXIT_OK
    for e in entries:
        files = ", ".join(name if digest else out.t("cli.history.absent", name=name)
                          for name, digest in sorted(e.files.items()))
        out.result(out.t("cli.history.row", id=e.id, time=e.time[:19].replace("T", " "),
                         action=out.t(f"cli.action.{e.action}"), files=files))
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, out: Out) -> int:
    from . import actions

    mr = mailroot_from(args, out)
    target, new_entry = actions.rollback(mr, args.to)
    if new_entry is None:
        out.say(Msg.of("cli.rollback.unchanged", id=target.id))
    else:
        out.say(Msg.of("cli.rollback.done", id=target.id, action=Msg.of(f"cli.action.{target.action}"),
                       new=new_entry.id))
        # What changed and what it means: the same lines the page shows.
        outcome = actions.rollback_outcome(target, new_entry)
        for line in outcome.file_lines(done=True) + outcome.consequences(done=True):
            out.say(line)
    if args.json:
        out.json({"mailroot": str(mr.path), "restored": target.id,
                  "archive": new_entry.id if new_entry else None, "files": dict(target.files)})
    return EXIT_OK


def _parse_assignment(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise UsageError(Msg.of("cli.settings.bad_assignment", item=item),
                         Msg.of("cli.settings.bad_assignment.fix"))
    return name.strip(), value


def cmd_settings(args: argparse.Namespace, out: Out) -> int:
    from . import actions
    from .servertab import ServerTab, tls_settings

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
        out.json({"mailroot": str(mr.path), "settings": [
            {"name": r["name"], "value": r["value"], "default": r["default"], "effective": r["effective"],
             "is_default": r["is_default"], "kind": r["kind"], "summary": r["summary"].render(out.lang),
             "meaning": r["meaning"].render(out.lang)} for r in rows]})
        return EXIT_OK
    for r in rows:
        value = out.t("cli.settings.unset") if r["value"] is None else f'"{r["value"]}"'
        out.result(out.t("cli.settings.row", name=r["name"], value=value,
                         meaning=r["meaning"].render(out.lang)))
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, Out], int]] = {
    "diagnose": cmd_diagnose,
    "csr": cmd_csr,
    "install": cmd_install,
    "history": cmd_history,
    "rollback": cmd_rollback,
    "settings": cmd_settings,
}


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
        func = getattr(args, "func", None) or _COMMANDS[args.command]
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            # Library warnings (a file path and a Python class name) are not
            # messages for an administrator: the code turns what matters
            # into catalog messages; the rest goes to the debug log.
            warnings.simplefilter("always")
            code = int(func(args, out))
            out.flush()
        for w in caught:
            import logging

            logging.getLogger(__name__).debug("warning: %s", w.message)
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
        import logging

        from .logs import log_unexpected

        where = log_unexpected(logging.getLogger(__name__), f"running {argv[:1]}", exc)
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
    # The store is imported only by commands that write: without it in
    # sys.modules nothing can have been committed (and start-up stays light).
    store = sys.modules.get("xmailnb.store")
    return len(store.committed_entries()) if store is not None else 0


def _commits_since(count: int) -> str:
    """The changes this run saved, as "action (archive id)" for a message."""
    store = sys.modules.get("xmailnb.store")
    if store is None:
        return ""
    return ", ".join(f"{e.action} ({e.id})" for e in store.committed_entries(count))


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

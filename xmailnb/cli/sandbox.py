"""``xmailnb sandbox [--reset [--yes]]``: where the practice sandbox is, and a fresh start."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..i18n import Msg
from ..mailroot.layout import sandbox_path
from ..mailroot.sandbox import archive_folder, generation, reset_sandbox
from .output import EXIT_OK, EXIT_REFUSED, Help

__all__ = ["register", "run"]


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    p = sub.add_parser("sandbox", parents=[common], help=t.of("sandbox.help.command"),
                       description=t.of("sandbox.help.description"))
    p.add_argument("--reset", action="store_true", help=t.of("sandbox.help.reset"))
    p.add_argument("--yes", action="store_true", help=t.of("sandbox.help.yes"))
    p.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
    p.set_defaults(func=run)


def _confirm(out: Any, path: str, archive: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError.of("sandbox.confirm.needed", "sandbox.confirm.needed.fix", path=path)
    out.say(Msg.of("sandbox.confirm.question", path=path, archive=archive))
    out.stderr.flush()
    try:
        answer = input(out.t("sandbox.confirm.prompt"))
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes", "はい", "ｙ")


def run(args: argparse.Namespace, out: Any) -> int:
    box = Path(os.path.abspath(sandbox_path()))
    if args.mailroot:
        given = Path(os.path.abspath(Path(args.mailroot).expanduser()))
        # Only the sandbox is ever reset; a named folder must be that very one.
        if given != box and os.path.realpath(given) != os.path.realpath(box):
            raise InputError.of("sandbox.not_the_sandbox", "sandbox.not_the_sandbox.fix",
                                field="mailroot", path=str(given), sandbox=str(box))
    archive = archive_folder(box)
    if not args.reset:
        gen = generation(box)
        if args.json:
            out.json({"sandbox": str(box), "exists": box.is_dir(), "generation": gen.to_json(),
                      "archive": str(archive)})
        else:
            out.result(out.t("sandbox.where", path=str(box)))
            out.result(out.t("sandbox.generation", number=gen.number))
            out.result(out.t("sandbox.archive", path=str(archive)))
            out.say(Msg.of("sandbox.where.hint"))
        return EXIT_OK
    if os.environ.get("MAIL_ROOT") and not args.mailroot:
        out.say(Msg.of("sandbox.mail_root_untouched", path=os.environ["MAIL_ROOT"], sandbox=str(box)))
    if not args.yes and not _confirm(out, str(box), str(archive)):
        out.say(Msg.of("sandbox.confirm.declined"))
        return EXIT_REFUSED
    result = reset_sandbox(box, by="self")
    if result.archived is None:
        out.say(Msg.of("sandbox.reset.created", path=str(box)))
    else:
        out.say(Msg.of("sandbox.reset.done", path=str(box), archive=str(result.archived)))
    if args.json:
        out.json({"sandbox": str(box), "archived": str(result.archived) if result.archived else None,
                  "generation": result.generation.to_json()})
    return EXIT_OK

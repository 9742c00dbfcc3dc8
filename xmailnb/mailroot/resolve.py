"""Which MailRoot: ``--mailroot``, else ``MAIL_ROOT``, else the practice sandbox.

A MailRoot is chosen by ``--mailroot``, else XMail's own ``MAIL_ROOT``
environment variable, else the sandbox: a practice MailRoot this product
creates on first use in the user's data folder.
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Mapping
from pathlib import Path

from ..errors import MailRootError
from ..files import file_kind
from ..i18n import Msg
from .layout import SANDBOX_MARKER, MailRoot, describe, sandbox_path
from .sandbox import create_sandbox, recover_reset
from .store import recover_interrupted

__all__ = ["resolve", "describe"]


def _unreadable(path: Path) -> MailRootError:
    return MailRootError(Msg.of("mailroot.unreadable", path=str(path)),
                         Msg.of("mailroot.unreadable.fix", path=str(path)))


def _check(path: Path) -> None:
    # Path.exists()/is_file() raise PermissionError for a folder this user
    # may not search: that is "unreadable", never an internal error.
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MailRootError.of("mailroot.missing", "mailroot.missing.fix", path=str(path)) from None
    except OSError:
        raise _unreadable(path) from None
    if not statmod.S_ISDIR(st.st_mode):
        raise MailRootError.of("mailroot.not_dir", "mailroot.not_dir.fix", path=str(path))
    if not os.access(path, os.R_OK | os.X_OK):
        raise _unreadable(path)
    try:
        tab = (path / "server.tab").stat()
    except FileNotFoundError:
        raise MailRootError.of("mailroot.no_servertab", "mailroot.no_servertab.fix", path=str(path)) from None
    except OSError:
        raise _unreadable(path) from None
    if not statmod.S_ISREG(tab.st_mode):
        raise MailRootError(Msg.of("mailroot.servertab.not_regular", path=str(path),
                                   kind=Msg.of(f"mailroot.kind.{file_kind(tab.st_mode)}")),
                            Msg.of("mailroot.servertab.not_regular.fix"))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def resolve(arg: str | os.PathLike[str] | None = None,
            environ: Mapping[str, str] | None = None, *, recover: bool = True) -> MailRoot:
    """Choose the MailRoot: *arg*, else ``MAIL_ROOT``, else the sandbox.

    With *recover* (the default), a change that was interrupted (the
    process killed, the power lost) is completed or undone first, see
    :func:`xmailnb.mailroot.store.recover_interrupted`.

    Raises:
        MailRootError: the chosen folder is missing, cannot be read by this
            user or does not look like a MailRoot (no server.tab).  The
            sandbox is created instead.
    """
    env = os.environ if environ is None else environ
    chosen = arg if arg not in (None, "") else env.get("MAIL_ROOT") or None
    if chosen is None:
        sandbox = sandbox_path(env)
        # A reset killed between its two renames leaves no sandbox: it is
        # completed (keeping its generation) before a new one is made.
        recover_reset(sandbox)
        if not _is_file(sandbox / "server.tab") or not _is_file(sandbox.joinpath(*SANDBOX_MARKER.split("/"))):
            mr = create_sandbox(sandbox)
        else:
            mr = MailRoot(path=sandbox, is_sandbox=True)
    else:
        path = Path(chosen).expanduser()
        try:
            path = path.resolve() if path.exists() else path.absolute()
        except OSError:
            raise _unreadable(path) from None
        recover_reset(path, journaled_only=True)
        _check(path)
        mr = MailRoot(path=path, is_sandbox=_is_file(path.joinpath(*SANDBOX_MARKER.split("/"))))
    if recover:
        recover_interrupted(mr)
    return mr

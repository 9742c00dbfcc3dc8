"""The class's JupyterHub pieces: authenticator, spawner, landing page.

Imported by the hub process only (the generated ``jupyterhub_config.py``
names these classes); the command line never imports JupyterHub.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any, Callable

from jupyterhub.auth import Authenticator
from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode, default

from . import roster
from ..errors import XmailnbError
from ..logs import log_unexpected
from ..i18n import text
from .hubconfig import BOARD_SERVICE

__all__ = ["ClassAuthenticator", "ClassSpawner", "QuietShutdown", "landing", "server_log", "template_vars"]

log = logging.getLogger(__name__)


class ClassAuthenticator(Authenticator):  # type: ignore[misc]  # JupyterHub ships no types
    """Log in with the name and password ``xmailnb classroom init/add`` gave.

    Checks the scrypt hashes in ``hub/passwords.json``, read at every login,
    so trainees added while the class is being served can log in at once.
    Only names of the class roster are allowed.
    """

    class_dir = Unicode(config=True, help="The class folder (xmailnb classroom init DIR).")

    def _room(self) -> roster.Classroom:
        return roster.load(self.class_dir)

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name = (data.get("username") or "").strip().lower()
        password = data.get("password") or ""
        try:
            room = self._room()
        except Exception as exc:  # a bug boundary: a login never crashes the hub
            log_unexpected(log, "reading the class roster", exc)
            return None
        stored = roster.password_hashes(room).get(name)
        if room.account(name) is None or stored is None:
            roster.verify_password(password, roster.hash_password("x"))  # same time as a wrong password
            return None
        return name if roster.verify_password(password, stored) else None

    def check_allowed(self, username: str, authentication: Any = None) -> bool:
        try:
            return self._room().account(username) is not None
        except (XmailnbError, OSError):
            return False


class ClassSpawner(SimpleLocalProcessSpawner):  # type: ignore[misc]  # JupyterHub ships no types
    """One local process per person: the workbook on their own sandbox.

    Their data folder is ``DIR/users/NAME`` (``XMAILNB_DATA_DIR``), so their
    sandbox is ``DIR/users/NAME/sandbox-MailRoot``; their language and their
    practice ports come from the roster.
    """

    class_dir = Unicode(config=True, help="The class folder.")
    board_url = Unicode(config=True, help="Where the server reports progress (the board service's URL).")
    popen_kwargs: dict[str, Any]  # LocalProcessSpawner's trait, typed here

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        room = roster.load(self.class_dir)
        account = room.account(self.user.name)
        env["XMAILNB_DATA_DIR"] = str(room.data_dir(self.user.name))
        env.pop("MAIL_ROOT", None)
        if account is not None:
            env["XMAILNB_LANG"] = account.lang
            env["XMAILNB_PRACTICE_PORTS"] = account.practice_ports
            if account.role == "trainee":
                env["XMAILNB_CLASS_BOARD_URL"] = self.board_url
        return env

    @default("home_dir")
    def _class_home_dir(self) -> str:
        return str(roster.load(self.class_dir).data_dir(self.user.name))

    async def start(self) -> Any:
        """Start the server with its output (and its kernels') in
        ``DIR/hub/logs/NAME.log``: the terminal of ``classroom serve`` stays
        for what the trainer must see, not for each page's access lines."""
        try:
            log_file = server_log(self.class_dir, self.user.name)
            out: Any = os.fdopen(os.open(log_file, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)),
                                 "ab", buffering=0)
        except (OSError, XmailnbError) as exc:
            log_file = Path(self.class_dir) / "hub" / "logs"
            log.warning("cannot write %s (%s): the server's messages go to the hub's terminal", log_file, exc)
            return await super().start()
        configured: dict[str, Any] = self.popen_kwargs
        try:
            self.popen_kwargs = {**configured, "stdout": out, "stderr": subprocess.STDOUT}
            return await super().start()
        finally:
            self.popen_kwargs = configured
            out.close()  # the child has its own copy


class QuietShutdown(logging.Filter):
    """Leaves out the hub's "Received signal SIGINT, initiating shutdown"
    line: JupyterHub logs a normal Ctrl-C at CRITICAL, and the terminal of
    ``classroom serve`` already says that the class is stopping."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Received signal %s, initiating shutdown", "Initiating shutdown"))


#: A server's log is set aside (NAME.log.1) when it grows beyond this at a start.
MAX_SERVER_LOG = 5 * 1024 * 1024


def server_log(class_dir: str, name: str) -> Path:
    """``DIR/hub/logs/NAME.log`` (folder 0700, file 0600), the previous one
    kept as ``NAME.log.1`` once it is large."""
    folder = Path(class_dir) / "hub" / "logs"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{roster.check_name(name)}.log"
    try:
        if path.stat().st_size > MAX_SERVER_LOG:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)
    return path


def landing(class_dir: str) -> Callable[[Any], str]:
    """``JupyterHub.default_url``: the trainer goes to the board, everyone
    else to their own workbook (JupyterHub's default)."""

    def default_url(handler: Any) -> str:
        user = handler.current_user
        try:
            trainer = roster.load(class_dir).trainer.name
        except (XmailnbError, OSError):
            return ""
        if user is not None and getattr(user, "name", None) == trainer:
            return str(handler.base_url) + f"services/{BOARD_SERVICE}/"
        return ""

    return default_url


def template_vars(class_dir: str) -> dict[str, str]:
    """The login page's announcement, in both languages (JupyterHub's own
    pages are in English only)."""
    try:
        lang = roster.load(class_dir).lang
    except (XmailnbError, OSError):
        lang = "en"
    other = "en" if lang == "ja" else "ja"
    return {"announcement_login": f"{text('classroom.login.hint', lang)} / {text('classroom.login.hint', other)}"}


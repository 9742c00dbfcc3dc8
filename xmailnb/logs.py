"""Where an internal error leaves its trace: the log file in the user's state folder.

Every module logs through ``logging.getLogger(__name__)``.  The command line
and the dashboard call :func:`log_unexpected` when something goes wrong that
is not a refusal (a bug): the traceback goes to ``xmailnb.log`` in the user's
state folder, and the message the user sees names that file, so a bug report
has something to read even though the page never shows a traceback.

The log never holds key material or tokens: messages are built from
exceptions and fingerprints, and one filter, :class:`SecretFilter` (used by
the dashboard server too), blanks anything that looks like a private key, a
``token=``/``login=`` value or an ``Authorization`` credential.

A user sees the log on stderr with ``--verbose`` (INFO: every change the
store makes) or ``XMAILNB_LOG=debug`` / ``XMAILNB_LOG=info``:
:func:`stderr_level` reads the choice, :func:`to_stderr` writes there.
``serve`` and ``classroom serve`` hand the choice to the servers they start
(:func:`child_environ`), which follow it (:func:`follow_environment`).

``XMAILNB_STATE_DIR`` overrides the folder (tests, shared machines).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, TextIO

from .errors import UsageError
from .files import user_folder

__all__ = ["state_dir", "log_path", "enable_file_log", "log_unexpected", "SecretFilter", "scrub",
           "LOG_ENV", "stderr_level", "to_stderr", "child_environ", "env_value", "follow_environment",
           "follow_in_service"]

LOG_NAME = "xmailnb.log"
_MAX_BYTES = 1024 * 1024
_BACKUPS = 2
_configured: tuple[Path, logging.Handler] | None = None
_followed: logging.Handler | None = None

#: The environment variable that turns the log on stderr on: its values and their levels.
LOG_ENV = "XMAILNB_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S)
_TOKEN = re.compile(r"((?:token|login|password|passphrase|_xsrf|xmailnb-key|xmailnb-page)=)[^&\s'\"]+", re.I)
_AUTHORIZATION = re.compile(r"\b(token|bearer)\s+[!-~]{8,}", re.I)


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user state folder (``XMAILNB_STATE_DIR`` overrides it)."""
    return user_folder("state", environ)


def log_path(environ: Mapping[str, str] | None = None) -> Path:
    """The log file internal errors are written to."""
    return state_dir(environ) / LOG_NAME


class SecretFilter(logging.Filter):
    """Blank private keys and credentials in every record, tracebacks included."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg!s} {record.args!r}"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = scrub(message), None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def scrub(text: str) -> str:
    """*text* without private keys, ``token=``-style values and ``Authorization`` credentials."""
    text = _PEM.sub("[private key hidden]", text)
    return _AUTHORIZATION.sub(r"\1 [hidden]", _TOKEN.sub(r"\1[hidden]", text))


def stderr_level(verbose: bool = False, environ: Mapping[str, str] | None = None) -> int | None:
    """The level of the log the user asked to see on stderr, or ``None``.

    ``--verbose`` (*verbose*) asks for INFO; :data:`LOG_ENV` for ``debug`` or
    ``info``; with both, the more detailed one wins.

    Raises:
        UsageError: :data:`LOG_ENV` holds something else.
    """
    env = os.environ if environ is None else environ
    value = env.get(LOG_ENV, "").strip().lower()
    if value and value not in LEVELS:
        raise UsageError.of("logs.env.unknown", "logs.env.unknown.fix", env=LOG_ENV, value=value)
    levels = [LEVELS[value]] if value else []
    if verbose:
        levels.append(logging.INFO)
    return min(levels) if levels else None


def _stderr_handler(stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("xmailnb: %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter())
    return handler


@contextmanager
def to_stderr(level: int | None, stream: TextIO | None = None) -> Iterator[None]:
    """While inside, write this process's ``xmailnb`` log records of *level*
    and up to *stream* (default: stderr) through :class:`SecretFilter`.

    With *level* ``None`` nothing is written there, not even a warning
    (Python would print those by default): what a user reads on stderr
    without asking for the log are the command's own messages.
    """
    root = logging.getLogger("xmailnb")
    handler: logging.Handler
    if level is None:
        handler = logging.NullHandler()
    else:
        handler = _stderr_handler(stream or sys.stderr)
        handler.setLevel(level)
    previous = root.level
    if level is not None and (root.level == logging.NOTSET or root.level > level):
        root.setLevel(level)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def enable_file_log() -> Path | None:
    """Send this process's ``xmailnb`` log records (WARNING and up) to the log file.

    Returns the file, or ``None`` when the state folder cannot be written
    (logging must never turn into a failure of its own).
    """
    global _configured
    path = log_path()
    root = logging.getLogger("xmailnb")
    if _configured is not None:
        if _configured[0] == path:
            return path
        root.removeHandler(_configured[1])  # the state folder was changed (tests)
        _configured[1].close()
        _configured = None
    # Only an internal error gets here: logging.handlers (socket, pickle,
    # queue) would be ~5 ms of every start-up.
    from logging.handlers import RotatingFileHandler

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = RotatingFileHandler(path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS,
                                      encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    handler.addFilter(SecretFilter())
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    _configured = (path, handler)
    return path


def log_unexpected(logger: logging.Logger, what: str, exc: BaseException) -> Path | None:
    """Log *exc* with its traceback as an internal error while doing *what*.

    Returns the log file the record went to (to name it to the user), or
    ``None`` when no file could be written.
    """
    path = enable_file_log()
    logger.error("unexpected error while %s", what, exc_info=(type(exc), exc, exc.__traceback__))
    return path


def child_environ(level: int | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a server this command starts: *environ* (default:
    this process's) with :data:`LOG_ENV` set to *level*, so that the server
    and its kernels log what this command would (``serve --verbose``)."""
    env = dict(os.environ if environ is None else environ)
    value = env_value(level)
    if value is not None:
        env[LOG_ENV] = value
    return env


def env_value(level: int | None) -> str | None:
    """The :data:`LOG_ENV` value that asks for *level* (``None``: no log asked for)."""
    if level is None:
        return None
    return "debug" if level <= logging.DEBUG else "info"


def follow_in_service() -> int | None:
    """:func:`follow_environment` in a server of the class (a trainee's
    server, the board, the culler): the ``xmailnb`` records go through the
    root's handler (``logging.basicConfig``, the server's log), which gets
    the one :class:`SecretFilter`, so nothing it writes shows a token."""
    redactor = SecretFilter()
    for existing in logging.getLogger().handlers:
        existing.addFilter(redactor)
    return follow_environment(handler=False)


def follow_environment(*, handler: bool = True) -> int | None:
    """In a process ``serve`` or ``classroom serve`` started (a server, a
    kernel): apply the level :data:`LOG_ENV` names to the ``xmailnb`` loggers
    for the rest of the process and, with *handler*, write their records to
    the terminal's stderr through :class:`SecretFilter` (in a kernel: the
    terminal the server was started from, not the page).

    Returns the level, or ``None`` when the log was not switched on (an
    unknown value included: the command that started the process refused it).
    """
    global _followed
    try:
        level = stderr_level()
    except UsageError:
        return None
    if level is None:
        return None
    root = logging.getLogger("xmailnb")
    root.setLevel(level)
    if handler and _followed is None:
        _followed = _stderr_handler(_terminal_stderr())
        root.addHandler(_followed)
    return level


def _terminal_stderr() -> TextIO:
    """Where stderr goes on the terminal.  In a kernel ``sys.stderr`` is sent
    to the page, and its ``fileno()`` is a copy of the terminal's stderr."""
    try:
        return open(os.dup(sys.stderr.fileno()), "w", encoding="utf-8", errors="backslashreplace",
                    buffering=1)
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
        return sys.__stderr__ or sys.stderr

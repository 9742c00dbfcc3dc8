"""Where an internal error leaves its trace: the log file in the user's state folder.

Every module logs through ``logging.getLogger(__name__)``.  The command line
and the dashboard call :func:`log_unexpected` when something goes wrong that
is not a refusal (a bug): the traceback goes to ``xmailnb.log`` in the user's
state folder, and the message the user sees names that file, so a bug report
has something to read even though the page never shows a traceback.

The log never holds key material or tokens: messages are built from
exceptions and fingerprints, and one filter (:class:`SecretFilter`, also on
the dashboard server's log) blanks anything that looks like a PEM block, a
``token=`` value or an ``Authorization`` credential.

``XMAILNB_STATE_DIR`` overrides the folder (tests, shared machines).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterable, Mapping

from .files import user_folder

__all__ = ["state_dir", "log_path", "enable_file_log", "log_unexpected", "SecretFilter"]

LOG_NAME = "xmailnb.log"
_MAX_BYTES = 1024 * 1024
_BACKUPS = 2
_configured: tuple[Path, logging.Handler] | None = None

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S)
_SECRET_PARAMS = ("token", "login", "password", "passphrase")
_CREDENTIAL = re.compile(r"\b((?:token|bearer)\s+)[!-~]{8,}", re.I)  # an Authorization header's value


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user state folder (``XMAILNB_STATE_DIR`` overrides it)."""
    return user_folder("state", environ)


def log_path(environ: Mapping[str, str] | None = None) -> Path:
    """The log file internal errors are written to."""
    return state_dir(environ) / LOG_NAME


def _param_pattern(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in dict.fromkeys([*_SECRET_PARAMS, *names]))
    return re.compile(rf"((?:{alternatives})=)[^&\s'\"]+", re.I)


class SecretFilter(logging.Filter):
    """Blank private keys and credentials in every record, tracebacks included.

    Args:
        params: more URL parameters whose values are secret (the dashboard's
            key and one-time page ticket), beyond ``token``, ``login``,
            ``password`` and ``passphrase``.
    """

    def __init__(self, params: Iterable[str] = ()) -> None:
        super().__init__()
        self._params = _param_pattern(params)

    def scrub(self, text: str) -> str:
        """*text* with private keys, secret parameters' values and
        ``Authorization`` credentials replaced."""
        return _CREDENTIAL.sub(r"\1[hidden]", self._params.sub(r"\1[hidden]", _PEM.sub("[private key hidden]", text)))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: left as they are
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.scrub(message), None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


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

"""Error types of the core, each carrying a :class:`~xmailnb.i18n.Msg`.

The exit status a command returns is a property of the error type, so the CLI
and the widgets agree on what went wrong without parsing text.
"""

from __future__ import annotations

from typing import Any

from .i18n import Msg

__all__ = [
    "XmailnbError",
    "InputError",
    "UsageError",
    "MailRootError",
    "BusyError",
]


class XmailnbError(Exception):
    """Base of every error the product reports to a user.

    Attributes:
        msg: what happened.
        fix: what the user can do about it (may be ``None``).
        field: the input that caused it (e.g. ``"cert"``, ``"country"``), so a
            form can show the error beside that input.
    """

    exit_code: int = 1

    def __init__(self, msg: Msg, fix: Msg | None = None, *, field: str | None = None) -> None:
        super().__init__(msg.key)
        self.msg = msg
        self.fix = fix
        self.field = field

    @classmethod
    def of(cls, key: str, fix: str | None = None, /, *, field: str | None = None, **params: Any) -> "XmailnbError":
        """Shorthand: ``InputError.of("csr.country.invalid", "csr.country.fix", value=v)``.
        The fix key is rendered with the same parameters."""
        return cls(Msg(key, params), Msg(fix, params) if fix else None, field=field)

    def render(self, lang: str) -> str:
        lines = [self.msg.render(lang)]
        if self.fix is not None:
            lines.append(self.fix.render(lang))
        return "\n".join(lines)


class InputError(XmailnbError):
    """Invalid value or input: refused, nothing changed (exit 1)."""

    exit_code = 1


class UsageError(XmailnbError):
    """Wrong use of the command line (exit 2)."""

    exit_code = 2


class MailRootError(XmailnbError):
    """The MailRoot cannot be used at all (exit 2)."""

    exit_code = 2


class BusyError(XmailnbError):
    """Another writer holds the MailRoot's lock (exit 3)."""

    exit_code = 3

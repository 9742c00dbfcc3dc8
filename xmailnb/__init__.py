"""xmailnb: guided, reversible TLS set-up for the XMail mail server.

The core (this package minus ``xmailnb.ui``) is plain Python: it reads and
changes a MailRoot and returns :class:`~xmailnb.i18n.Msg` values that the
command line and the widgets render in Japanese or English.  Submodules are
imported on demand so that the command line starts fast.

The teaching notebooks use only the names below, never module paths, so
that modules can move without breaking them::

    import xmailnb

    mr = xmailnb.open_mailroot(lang="ja")          # MAIL_ROOT, else the sandbox
    xmailnb.require_steps("install", mr, lang="ja")  # "do step 2 first", or all set
    xmailnb.hand_check("cert.verify", mr, lang="ja") # openssl, run and explained

- :func:`open_mailroot`: the MailRoot in use, saying which it is.
- :func:`step_progress`: every step's state (todo/done/attention/broken).
- :func:`progress_overview`: the same, as a notebook shows it, with the
  notebook to open next.
- :func:`require_steps`: whether the steps a step needs are done, and what
  to do if not.
- :func:`hand_check`: one of the ``openssl`` checks, run on the MailRoot as
  it is, with its meaning and xmailnb's own verdict.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> (module, attribute).  Resolved on first use: ``import xmailnb``
# stays as cheap as before for the command line.
_LAZY: dict[str, tuple[str, str]] = {
    "open_mailroot": ("xmailnb.notebook.guide", "open_mailroot"),
    "require_steps": ("xmailnb.notebook.guide", "require_steps"),
    "progress_overview": ("xmailnb.notebook.guide", "progress_overview"),
    "step_progress": ("xmailnb.checks.progress", "step_progress"),
    "hand_check": ("xmailnb.notebook.handchecks", "hand_check"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""xmailnb: guided, reversible TLS set-up for the XMail mail server.

The core (this package minus ``xmailnb.ui``) is plain Python: it reads and
changes a MailRoot and returns :class:`~xmailnb.i18n.Msg` values that the
command line and the widgets render in Japanese or English.  Submodules are
imported on demand so that the command line starts fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

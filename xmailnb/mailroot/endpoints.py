"""XMail's listeners: the endpoints a mail server offers, their standard
ports, and the server.tab flag that turns STARTTLS on for each.

Listeners are command-line options of the XMail service (``-SI``, ``-PI``,
...), invisible in server.tab: these are the stock ones.  The live probe,
the workbook's settings and the user notice all speak of endpoints by these
names.
"""

from __future__ import annotations


__all__ = ["ENDPOINTS", "DEFAULT_ENDPOINTS", "STARTTLS_ENDPOINTS", "STARTTLS_FLAGS", "PROTOCOLS"]

#: Every endpoint the probe knows, with its standard port.
ENDPOINTS: dict[str, int] = {"smtp": 25, "submission": 587, "smtps": 465, "pop3": 110, "pop3s": 995,
                             "ctrl": 6017, "ctrls": 6018}
#: What a stock XMail 1.27 listens on, probed when no ports are named.  CTRL
#: (6017) is probed only on request: its STARTTLS is XMail's own ``#!TLS``,
#: which only XMail's tools speak.  Submission (587) exists only when the
#: service is started with an extra ``-SI ...:587``.
DEFAULT_ENDPOINTS: tuple[str, ...] = ("smtp", "smtps", "pop3", "pop3s", "ctrls")
#: How TLS starts on each STARTTLS endpoint: ``smtp`` (STARTTLS), ``pop3``
#: (STLS) or ``ctrl`` (``#!TLS``); the others start with the handshake.
STARTTLS_ENDPOINTS: dict[str, str] = {"smtp": "smtp", "submission": "smtp", "pop3": "pop3", "ctrl": "ctrl"}
#: The server.tab flag that offers STARTTLS on each STARTTLS endpoint.
STARTTLS_FLAGS: dict[str, str] = {"smtp": "EnableSMTP-TLS", "submission": "EnableSMTP-TLS",
                                  "pop3": "EnablePOP3-TLS", "ctrl": "EnableCTRL-TLS"}
#: The protocol spoken on each endpoint once TLS is up.
PROTOCOLS: dict[str, str] = {"smtp": "smtp", "submission": "smtp", "smtps": "smtp", "pop3": "pop3",
                             "pop3s": "pop3", "ctrl": "ctrl", "ctrls": "ctrl"}

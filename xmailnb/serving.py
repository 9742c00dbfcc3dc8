"""How ``xmailnb serve`` runs the dashboard: the Voilà command, its
configuration, the access token and the kernel's environment.

Nothing here imports Voilà or Jupyter: it only builds a :class:`ServePlan`
(argv, environment, a private configuration file) that the ``serve`` command
hands to a ``python -m voila`` subprocess.  Keeping it plain data lets the
tests check every security-relevant choice without starting a server.

Choices and why:

* Loopback (127.0.0.1) by default.  Any other address needs a token: the
  dashboard writes to a MailRoot, so it must never be open to a whole network.
* The token goes into ``voila.json`` in a private working folder of the
  server, never on its command line, where ``ps`` would show it to every local
  user, nor in the kernel's environment.
* Our own Voilà template (``xmailnb``, extending ``lab``) drops the stock
  template's Font Awesome and Mermaid CDN links so that the page loads nothing
  from another host; template and theme overrides from the URL are refused
  so a visitor cannot switch back to the stock template.
* Tracebacks hidden and sources stripped: a visitor sees the dashboard, not
  the code or a stack trace with file paths.
* On loopback, requests must name a loopback host (Host header): a web page
  that rebinds its DNS name to 127.0.0.1 cannot reach the open dashboard.
* Upload size: widget uploads arrive as websocket messages; their cap is
  :data:`MAX_MESSAGE_BYTES` (certificates and keys are a few KB).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .errors import InputError, UsageError
from .mailroot import MailRoot

__all__ = [
    "DEFAULT_PORT",
    "MAX_MESSAGE_BYTES",
    "TEMPLATE",
    "ServePlan",
    "dashboard_notebook",
    "share_dir",
    "is_loopback",
    "new_token",
    "plan",
    "check_port",
]

DEFAULT_PORT = 8866
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
TEMPLATE = "xmailnb"


def share_dir() -> Path:
    """The package's data folder (Jupyter data layout: ``jupyter/voila/templates``)."""
    return Path(__file__).resolve().parent / "share"


def dashboard_notebook() -> Path:
    """The dashboard notebook shipped inside the package (``notebooks/dashboard.ipynb``
    in the repository is the same file: a test keeps them identical)."""
    return share_dir() / "dashboard.ipynb"


def is_loopback(ip: str) -> bool:
    """True for an address that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if ip.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    import secrets

    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class ServePlan:
    """Everything needed to start the dashboard server.

    Attributes:
        argv: the command (``python -m voila ...``), without secrets.
        env: the server's environment; the kernel inherits it, so ``MAIL_ROOT``
            and ``XMAILNB_LANG`` reach the dashboard.
        config: ``voila.json`` to write into the server's working folder
            (holds the token when there is one).
        url: where a browser on this machine opens the dashboard (with the
            token in the query when there is one).
        token: the access token, or ``""`` for an open loopback server.
        token_generated: True when the token was made here and must be shown.
    """

    argv: list[str]
    env: dict[str, str]
    config: dict[str, object]
    url: str
    ip: str
    port: int
    token: str
    token_generated: bool
    mailroot: MailRoot
    lang: str
    notebook: Path = field(default_factory=dashboard_notebook)

    def write_config(self, folder: Path) -> Path:
        """Write ``voila.json`` (mode 0600: it may hold the token) into *folder*."""
        import json

        path = folder / "voila.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.config, fh, indent=1)
        return path


def _url_host(ip: str) -> str:
    if ip in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    if ":" in ip and not ip.startswith("["):
        return f"[{ip}]"
    return ip


def plan(mailroot: MailRoot, *, lang: str, port: int = DEFAULT_PORT, ip: str = "127.0.0.1",
         token: str | None = None, python: str | None = None,
         environ: Mapping[str, str] | None = None, notebook: Path | None = None) -> ServePlan:
    """Build the server command for *mailroot*.

    Args:
        mailroot: the resolved MailRoot the dashboard works on.
        lang: ``"ja"`` or ``"en"``, given to the dashboard as ``XMAILNB_LANG``.
        port: TCP port (1-65535).
        ip: address to bind; anything but loopback requires a token.
        token: access token; ``None`` means none on loopback and a fresh one
            from :mod:`secrets` on any other address.
        python: interpreter for ``-m voila`` (default: this one).
        environ: base environment (default: ``os.environ``).

    Raises:
        UsageError: port out of range, or an empty token on a non-loopback bind.
    """
    if not 1 <= port <= 65535:
        raise UsageError.of("serve.port.invalid", "serve.port.invalid.fix", field="port", port=port)
    ip = ip.strip() or "127.0.0.1"
    generated = False
    if token is not None:
        token = token.strip()
    if not is_loopback(ip):
        if token == "":
            raise UsageError.of("serve.token.required", "serve.token.required.fix", field="token", ip=ip)
        if token is None:
            token, generated = new_token(), True
    token = token or ""
    nb = notebook or dashboard_notebook()
    argv = [
        python or sys.executable, "-m", "voila", str(nb),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={ip}",
        "--Voila.port_retries=0",
        f"--template={TEMPLATE}",
        "--VoilaConfiguration.allow_template_override=NO",
        "--VoilaConfiguration.allow_theme_override=NO",
        "--show_tracebacks=False",
        "--strip_sources=True",
        # A kernel is started and the dashboard's imports run before anyone
        # asks: the page is then as quick as an empty Voilà app.  The
        # notebook waits for the request (voila.utils.wait_for_request)
        # before it reads the MailRoot, so the page never shows a state from
        # preheat time.
        "--preheat_kernel=True",
        "--pool_size=1",
        "--Voila.log_level=ERROR",
    ]
    tornado_settings: dict[str, object] = {"websocket_max_message_size": MAX_MESSAGE_BYTES}
    if is_loopback(ip):
        # Voila allows any Host header; on loopback we want jupyter_server's
        # check back, so a web page using DNS rebinding cannot reach us.
        tornado_settings["allow_remote_access"] = False
    config: dict[str, object] = {"Voila": {"tornado_settings": tornado_settings}}
    if token:
        # auto_token off and an explicit token: jupyter_server's identity
        # provider then requires it (query ?token=, header or login form).
        config["Voila"] = {**config["Voila"], "token": token}  # type: ignore[dict-item]
    base = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in base.items() if k not in ("JUPYTER_TOKEN", "JUPYTER_PASSWORD")}
    env["MAIL_ROOT"] = str(mailroot.path)
    env["XMAILNB_LANG"] = lang
    share = str(share_dir() / "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join([share, *filter(None, [base.get("JUPYTER_PATH")])])
    env.setdefault("PYTHONUNBUFFERED", "1")
    url = f"http://{_url_host(ip)}:{port}/"
    if token:
        url += f"?token={token}"
    return ServePlan(argv=argv, env=env, config=config, url=url, ip=ip, port=port, token=token,
                     token_generated=generated, mailroot=mailroot, lang=lang, notebook=nb)


def check_port(ip: str, port: int) -> None:
    """Refuse early, with a clear message, when *port* cannot be bound on *ip*.

    Raises:
        InputError: the port is in use or not allowed (exit 1).
    """
    import errno
    import socket

    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same option tornado uses, so a port in TIME_WAIT is not called busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError.of("serve.port.busy", "serve.port.busy.fix", field="port",
                                    port=port, ip=ip) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise InputError.of("serve.port.denied", "serve.port.denied.fix", field="port",
                                    port=port, ip=ip) from None
            raise InputError.of("serve.ip.invalid", "serve.ip.invalid.fix", field="ip", ip=ip,
                                reason=exc.strerror or str(exc)) from None

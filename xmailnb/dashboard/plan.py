"""How ``xmailnb serve`` runs the dashboard: the server's command, its
configuration, the access token and the kernels' environment.

Nothing here imports Voilà or Jupyter: it only builds a :class:`ServePlan`
(argv, environment, a private configuration file) that the ``serve`` command
hands to a ``python -m xmailnb.dashboard.server`` subprocess (Voilà behind a
door, :mod:`xmailnb.dashboard.server`).  Keeping it plain data lets the tests
check every security-relevant choice without starting a server.

Choices and why:

* A token always, loopback included.  Every local account can reach
  127.0.0.1, and any web page the admin visits can make the browser send
  requests to it; the dashboard writes to a MailRoot.  The token is made with
  :mod:`secrets` (256 bits) unless one is given in a file (``--token-file``)
  or in ``XMAILNB_TOKEN``; never on a command line, where ``ps`` shows it to
  every local user.  Tokens shorter than :data:`MIN_TOKEN_LENGTH` are refused.
* The server gets only SHA-256 digests (of the token, of a one-time login
  code and of the kernels' query key) in ``voila.json`` inside a private
  working folder: it can check a token but never show or log one, and the
  kernels' environment never holds it.
* The browser is opened with a one-time login address (the browser's command
  line is visible in ``ps`` too): the server answers it with an HTTP-only,
  SameSite=Strict session cookie, bound to this run of the server, and a
  browser key the page keeps to itself (the cookie alone opens nothing:
  :mod:`xmailnb.dashboard.server`), and a redirect to the page without the
  code.  The printed address with ``?token=`` works the same way.
* Our own Voilà template (``xmailnb``, extending ``lab``) loads nothing from
  another host; template and theme overrides from the URL are refused.
* Tracebacks hidden and sources stripped.
* Bounded kernels: at most :data:`DEFAULT_MAX_PAGES` open pages (a clear page
  says so beyond it), and a page's kernel stops when no page has been
  connected to it for :data:`DEFAULT_PAGE_TIMEOUT` seconds.
* Upload size: widget uploads arrive as websocket messages; their cap is
  :data:`MAX_MESSAGE_BYTES` (certificates and keys are a few KB).
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import os
import secrets
import socket
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import quote

from ..errors import InputError, UsageError
from ..files import FileTooLarge, NotRegularFile, read_regular
from ..i18n import LANGUAGES
from ..mailroot.layout import MailRoot

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_PAGE_TIMEOUT",
    "MAX_MESSAGE_BYTES",
    "MIN_TOKEN_LENGTH",
    "TOKEN_ENV",
    "TEMPLATE",
    "ServePlan",
    "dashboard_notebook",
    "share_dir",
    "is_loopback",
    "new_token",
    "check_token",
    "read_token_file",
    "resolve_token",
    "digest",
    "plan",
    "check_port",
    "VOILA_ARGS",
]

DEFAULT_PORT = 8866
DEFAULT_MAX_PAGES = 4
DEFAULT_PAGE_TIMEOUT = 60
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 512
LOGIN_CODE_TTL = 600  # seconds the one-time login address stays usable
TOKEN_ENV = "XMAILNB_TOKEN"
TEMPLATE = "xmailnb"
SERVER_MODULE = "xmailnb.dashboard.server"

#: Environment of the kernels (see :mod:`xmailnb.dashboard.page`).
QUERY_URL_ENV = "XMAILNB_PAGE_QUERY_URL"
PAGE_LANG_ENV = "XMAILNB_PAGE_LANG"

# Never handed on to the server or its kernels.
_SECRET_ENV = (TOKEN_ENV, "JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE", "JUPYTER_PASSWORD")


def share_dir() -> Path:
    """The package's data folder (Jupyter data layout: ``jupyter/voila/templates``)."""
    return Path(__file__).resolve().parent.parent / "share"


def dashboard_notebook() -> Path:
    """The dashboard notebook shipped inside the package (``notebooks/dashboard.ipynb``
    in the repository is the same file: a test keeps them identical)."""
    return share_dir() / "dashboard.ipynb"


def is_loopback(ip: str) -> bool:
    """True for an address that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if ip.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh access token: 256 bits from :mod:`secrets`, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 (hex) of *secret*: what the server keeps instead of the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_token(token: str, source: str) -> str:
    """Return *token* if it is usable, else raise a clear :class:`UsageError`.

    A token is printable ASCII without spaces, :data:`MIN_TOKEN_LENGTH` to
    :data:`MAX_TOKEN_LENGTH` characters (*source* names where it came from in
    the message).
    """
    if not token:
        raise UsageError.of("serve.token.empty", "serve.token.empty.fix", field="token", source=source)
    if len(token) < MIN_TOKEN_LENGTH:
        raise UsageError.of("serve.token.short", "serve.token.short.fix", field="token", source=source,
                            length=len(token), minimum=MIN_TOKEN_LENGTH)
    if len(token) > MAX_TOKEN_LENGTH:
        raise UsageError.of("serve.token.long", "serve.token.long.fix", field="token", source=source,
                            maximum=MAX_TOKEN_LENGTH)
    if not all("!" <= ch <= "~" for ch in token):
        raise UsageError.of("serve.token.charset", "serve.token.charset.fix", field="token", source=source)
    return token


def read_token_file(path: str) -> str:
    """The token in the first line of the file at *path* (a UTF-8 BOM and
    surrounding white space are ignored).

    The file must be a regular file that no other account can read or write
    (as ssh insists for its keys): a token others can read protects nothing.

    Raises:
        UsageError: unreadable, not a regular file, readable by others, not
            text, or not a usable token.
    """
    try:
        data = read_regular(path, 64 * 1024)
        mode = os.stat(path).st_mode
    except (NotRegularFile, FileTooLarge, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError.of("serve.token_file.unreadable", "serve.token_file.unreadable.fix", field="token_file",
                            path=path, reason=reason) from None
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise UsageError.of("serve.token_file.open", "serve.token_file.open.fix", field="token_file", path=path,
                            mode=f"{stat.S_IMODE(mode):04o}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        first = data.decode("utf-8").strip().splitlines()
    except UnicodeDecodeError:
        raise UsageError.of("serve.token.charset", "serve.token.charset.fix", field="token_file",
                            source=path) from None
    return check_token(first[0].strip() if first else "", path)


def resolve_token(token_file: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The token to use and where it came from: ``(token, "file")`` from
    *token_file*, ``(token, "env")`` from ``XMAILNB_TOKEN``, else a new one
    ``(token, "generated")``.

    Raises:
        UsageError: the file or the variable holds no usable token.
    """
    env = os.environ if environ is None else environ
    if token_file is not None:
        return read_token_file(token_file), "file"
    if TOKEN_ENV in env:
        return check_token(env[TOKEN_ENV].strip(), TOKEN_ENV), "env"
    return new_token(), "generated"


@dataclass(frozen=True)
class ServePlan:
    """Everything needed to start the dashboard server.

    Attributes:
        argv: the command (``python -m xmailnb.dashboard.server ...``), without secrets.
        env: the server's environment; the kernels inherit it, so ``MAIL_ROOT``
            reaches the dashboard; it holds no token.
        config: ``voila.json`` to write into the server's working folder
            (digests only, never the token itself).
        url: the dashboard's address, without any secret.
        login_url: the address that logs a browser in (``?token=``).
        open_url: the one-time login address for the browser opened at start.
        token: the access token.
        token_source: ``"generated"``, ``"file"`` or ``"env"``.
        lang: the language every page is forced to (``serve --lang``), or
            ``None``: each page then takes its browser's language.
    """

    argv: list[str]
    env: dict[str, str]
    config: dict[str, object]
    url: str
    login_url: str
    open_url: str
    ip: str
    port: int
    token: str
    token_source: str
    mailroot: MailRoot
    lang: str | None
    max_pages: int
    page_timeout: int
    notebook: Path = field(default_factory=dashboard_notebook)

    @property
    def token_generated(self) -> bool:
        return self.token_source == "generated"

    def write_config(self, folder: Path) -> Path:
        """Write ``voila.json`` (mode 0600) into *folder*."""
        path = folder / "voila.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.config, fh, indent=1)
        return path


def _url_host(ip: str) -> str:
    if ip in ("", "0.0.0.0"):
        return "127.0.0.1"
    if ip == "::":
        return "[::1]"
    if ":" in ip and not ip.startswith("["):
        return f"[{ip}]"
    return ip


def plan(mailroot: MailRoot, *, lang: str | None, port: int = DEFAULT_PORT, ip: str = "127.0.0.1",
         token: str | None = None, token_source: str | None = None, max_pages: int = DEFAULT_MAX_PAGES,
         page_timeout: int = DEFAULT_PAGE_TIMEOUT, python: str | None = None,
         environ: Mapping[str, str] | None = None, notebook: Path | None = None) -> ServePlan:
    """Build the server command for *mailroot*.

    Args:
        mailroot: the resolved MailRoot the dashboard works on.
        lang: ``"ja"`` or ``"en"`` to force every page's language, or
            ``None`` to let each page follow its browser (``Accept-Language``).
        port: TCP port (1-65535).
        ip: address to bind.
        token: access token (checked with :func:`check_token`); ``None``
            makes a fresh one.
        token_source: where *token* came from (``"file"``, ``"env"``).
        max_pages: how many pages (each with its kernel) may be open at once.
        page_timeout: seconds a kernel lives on once no page is connected to it.
        python: interpreter for the server (default: this one).
        environ: base environment (default: ``os.environ``).

    Raises:
        UsageError: port, page limit or timeout out of range; unusable token.
    """
    if not 1 <= port <= 65535:
        raise UsageError.of("serve.port.invalid", "serve.port.invalid.fix", field="port", port=port)
    if not 1 <= max_pages <= 50:
        raise UsageError.of("serve.max_pages.invalid", "serve.max_pages.invalid.fix", field="max_pages",
                            value=max_pages)
    if not 5 <= page_timeout <= 86400:
        raise UsageError.of("serve.page_timeout.invalid", "serve.page_timeout.invalid.fix",
                            field="page_timeout", value=page_timeout)
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    ip = ip.strip() or "127.0.0.1"
    if token is None:
        token, token_source = new_token(), "generated"
    else:
        token = check_token(token.strip(), token_source or "--token")
    login_code = secrets.token_urlsafe(32)
    query_key = secrets.token_urlsafe(32)
    nb = notebook or dashboard_notebook()
    argv = [
        python or sys.executable, "-m", SERVER_MODULE, str(nb),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={ip}",
        *VOILA_ARGS,
    ]
    # Pings every 30 s, closed after 30 s without an answer: a browser that
    # vanished without closing its websocket frees its page (and kernel).
    tornado_settings: dict[str, object] = {"websocket_max_message_size": MAX_MESSAGE_BYTES,
                                           "ws_ping_interval": 30000, "ws_ping_timeout": 30000}
    if is_loopback(ip):
        # jupyter_server's own Host check for its handlers; the door checks
        # the Host of every request (DNS rebinding) on top of it.
        tornado_settings["allow_remote_access"] = False
    config: dict[str, object] = {
        "Voila": {"tornado_settings": tornado_settings},
        "VoilaConfiguration": {"http_header_envs": ["Accept-Language"]},
        "XmailnbVoila": {
            "token_sha256": digest(token),
            "login_code_sha256": digest(login_code),
            "login_code_ttl": LOGIN_CODE_TTL,
            "query_key_sha256": digest(query_key),
            "page_lang": lang or "",
            "max_pages": max_pages,
        },
        "PageKernelManager": {"page_timeout": page_timeout},
    }
    base = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in base.items() if k not in _SECRET_ENV}
    env["MAIL_ROOT"] = str(mailroot.path)
    if lang is None:
        env.pop("XMAILNB_LANG", None)
        env.pop(PAGE_LANG_ENV, None)
    else:
        env["XMAILNB_LANG"] = env[PAGE_LANG_ENV] = lang
    host = _url_host(ip)
    env[QUERY_URL_ENV] = f"ws://{host}:{port}/xmailnb/query/{query_key}"
    share = str(share_dir() / "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join([share, *filter(None, [base.get("JUPYTER_PATH")])])
    env.setdefault("PYTHONUNBUFFERED", "1")
    url = f"http://{host}:{port}/"
    return ServePlan(argv=argv, env=env, config=config, url=url, login_url=f"{url}?token={quote(token, safe='')}",
                     open_url=f"{url}?login={login_code}", ip=ip, port=port, token=token,
                     token_source=token_source or "given", mailroot=mailroot, lang=lang, max_pages=max_pages,
                     page_timeout=page_timeout, notebook=nb)


#: How every dashboard runs Voilà (``xmailnb serve`` and a trainee's server):
#: our template only, no tracebacks or sources in the page, a preheated kernel.
VOILA_ARGS = (
    "--Voila.port_retries=0",
    f"--template={TEMPLATE}",
    "--VoilaConfiguration.allow_template_override=NO",
    "--VoilaConfiguration.allow_theme_override=NO",
    "--show_tracebacks=False",
    "--strip_sources=True",
    # A kernel is started and the dashboard's imports run before anyone
    # asks: the page is then as quick as an empty Voilà app.  The notebook
    # waits for the request (voila.utils.wait_for_request) before it reads
    # the MailRoot, so the page never shows a state from preheat time; the
    # request brings the browser's language.
    "--preheat_kernel=True",
    "--pool_size=1",
    "--Voila.log_level=ERROR",
)


def check_port(ip: str, port: int, *, domain: str = "serve") -> None:
    """Refuse early, with a clear message, when *port* cannot be bound on *ip*.

    *domain* names the command whose messages are used (``serve``,
    ``classroom``: ``<domain>.port.busy``, ``.port.denied``, ``.ip.invalid``).

    Raises:
        InputError: the port is in use or not allowed (exit 1).
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same option tornado uses, so a port in TIME_WAIT is not called busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError.of(f"{domain}.port.busy", f"{domain}.port.busy.fix", field="port",
                                    port=port, ip=ip) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise InputError.of(f"{domain}.port.denied", f"{domain}.port.denied.fix", field="port",
                                    port=port, ip=ip) from None
            raise InputError.of(f"{domain}.ip.invalid", f"{domain}.ip.invalid.fix", field="ip", ip=ip,
                                reason=exc.strerror or str(exc)) from None

"""The JupyterHub configuration of a class, as plain data and as a config file.

Nothing here imports JupyterHub: :func:`plan` builds a :class:`HubPlan` and
:meth:`HubPlan.render` writes the ``jupyterhub_config.py`` that
``xmailnb classroom serve`` runs and ``xmailnb classroom config`` prints, so
the same file can be taken to a DockerSpawner or Kubernetes deployment
(``docs/classroom.md``).

Choices and why:

* Our own authenticator (:class:`xmailnb.classroom.hub.ClassAuthenticator`)
  checks scrypt hashes kept in the class folder: no password is stored in
  clear, not even in this configuration.
* Each person's single-user server is the dashboard itself
  (:mod:`xmailnb.classroom.singleuser`: Voilà behind JupyterHub's OAuth), not
  a Jupyter server: there is no contents, terminal or kernel-creation API to
  reach, only the workbook.
* The board is a JupyterHub service; only the trainer's role carries
  ``access:services!service=class-board``.  Trainees' servers report their
  progress to it over HTTP with their own server token, which carries the
  custom scope ``custom:xmailnb:report!user``: a server can report for its
  own user only.
* Everything listens on 127.0.0.1 except the proxy's public address.
"""

from __future__ import annotations

import pprint
import shutil
import sys
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..logs import LOG_ENV, env_value
from .report import BOARD_SERVICE
from .roster import Classroom

__all__ = ["BOARD_SERVICE", "REPORT_SCOPE", "HubPlan", "plan", "proxy_command"]

CULLER_SERVICE = "idle-culler"
REPORT_SCOPE = "custom:xmailnb:report"
TRAINER_ROLE = "xmailnb-trainer"
DEFAULT_PORT = 8000
DEFAULT_IDLE_TIMEOUT = 3600
KERNEL_CULL_SECONDS = 300


def proxy_command() -> list[str] | None:
    """configurable-http-proxy as found on PATH (npm or Debian), else ``None``."""
    found = shutil.which("configurable-http-proxy")
    return [found] if found else None


def _url_host(ip: str) -> str:
    if ip in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


@dataclass(frozen=True)
class HubPlan:
    """Every setting of the class's hub.

    Attributes:
        settings: ``(name, value)`` pairs such as ``("JupyterHub.bind_url", "http://...")``.
        imports: modules the config file imports (for callables).
        url: the address trainees and the trainer open.
    """

    room: Classroom
    ip: str
    port: int
    hub_port: int
    proxy_api_port: int
    board_port: int
    url: str
    settings: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def ports(self) -> dict[str, int]:
        return {"public": self.port, "hub": self.hub_port, "proxy_api": self.proxy_api_port,
                "board": self.board_port}

    def render(self) -> str:
        """The ``jupyterhub_config.py`` text."""
        lines = [
            "# JupyterHub configuration of an xmailnb class, written by `xmailnb classroom serve`",
            "# (`xmailnb classroom config DIR` prints it).  It holds no password: the",
            "# authenticator checks the scrypt hashes in hub/passwords.json.",
            "import xmailnb.classroom.hub",
            "",
            "c = get_config()  # noqa: F821",
        ]
        for name, value in self.settings:
            if isinstance(value, _Code):
                lines.append(f"c.{name} = {value.text}")
            else:
                lines.append(f"c.{name} = {pprint.pformat(value, width=100, sort_dicts=False)}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Code:
    """A value written as code (a call), not as a literal."""

    text: str


def plan(room: Classroom, *, ip: str = "127.0.0.1", port: int = DEFAULT_PORT,
         python: str | None = None, proxy: list[str] | None = None,
         idle_timeout: int = DEFAULT_IDLE_TIMEOUT, kernel_cull: int = KERNEL_CULL_SECONDS,
         ssl_cert: str | None = None, ssl_key: str | None = None, log_level: int | None = None) -> HubPlan:
    """The hub of *room* on *ip*:*port*.

    The hub's own API, the proxy's API and the board listen on 127.0.0.1,
    on the three ports after *port*.  With *ssl_cert* and *ssl_key*
    (JupyterHub's ``ssl_cert``/``ssl_key``) the public address is HTTPS.
    With *log_level* (``classroom serve --verbose``, ``XMAILNB_LOG``) the
    trainees' servers (and their kernels) and the board log at that level
    too: JupyterHub starts them with only the environment it is told to
    give (``Spawner.environment``, a service's ``environment``).
    """
    if not 1 <= port <= 65532:
        raise UsageError.of("classroom.port.invalid", "classroom.port.invalid.fix", field="port", port=port)
    python = python or sys.executable
    hub_port, proxy_api_port, board_port = port + 1, port + 2, port + 3
    board_url = f"http://127.0.0.1:{board_port}"
    scheme = "https" if ssl_cert and ssl_key else "http"
    public = f"{scheme}://{_url_host(ip)}:{port}"
    hub_dir = room.hub_dir
    log_value = env_value(log_level)
    log_env = {LOG_ENV: log_value} if log_value is not None else {}
    tls: list[tuple[str, Any]] = ([("JupyterHub.ssl_cert", ssl_cert), ("JupyterHub.ssl_key", ssl_key)]
                                  if scheme == "https" else [])
    s: list[tuple[str, Any]] = [
        ("JupyterHub.bind_url", f"{scheme}://{ip}:{port}/" if ":" not in ip else f"{scheme}://[{ip}]:{port}/"),
        *tls,
        ("JupyterHub.hub_bind_url", f"http://127.0.0.1:{hub_port}"),
        ("ConfigurableHTTPProxy.api_url", f"http://127.0.0.1:{proxy_api_port}"),
        ("ConfigurableHTTPProxy.command", proxy or ["configurable-http-proxy"]),
        # The terminal of `classroom serve` stays quiet unless something is wrong.
        ("ConfigurableHTTPProxy.log_level", "error"),
        ("JupyterHub.db_url", f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}"),
        ("JupyterHub.cookie_secret_file", str(hub_dir / "jupyterhub_cookie_secret")),
        ("JupyterHub.log_level", "ERROR"),
        ("JupyterHub.logging_config", {
            "filters": {"xmailnb-quiet": {"()": "xmailnb.classroom.hub.QuietShutdown"}},
            "handlers": {"console": {"filters": ["xmailnb-quiet"]}}}),
        ("Authenticator.any_allow_config", True),  # ClassAuthenticator.check_allowed: the roster
        ("JupyterHub.cleanup_servers", True),
        ("JupyterHub.authenticator_class", "xmailnb.classroom.hub.ClassAuthenticator"),
        ("ClassAuthenticator.class_dir", str(room.path)),
        ("JupyterHub.spawner_class", "xmailnb.classroom.hub.ClassSpawner"),
        ("ClassSpawner.class_dir", str(room.path)),
        ("ClassSpawner.board_url", f"{board_url}/services/{BOARD_SERVICE}/"),
        ("Spawner.cmd", [python, "-m", "xmailnb.classroom.singleuser"]),
        ("Spawner.args", [f"--MappingKernelManager.cull_idle_timeout={kernel_cull}",
                          "--MappingKernelManager.cull_interval=60"]),
        *([("Spawner.environment", log_env)] if log_env else []),
        ("Spawner.http_timeout", 60),
        # Ctrl-C on the class stops every server within seconds.
        ("ClassSpawner.interrupt_timeout", 5),
        ("ClassSpawner.term_timeout", 5),
        ("Spawner.start_timeout", 120),
        # After a restart of the class, a tab reloaded on /user/NAME/ starts its
        # server again by itself and lands on the workbook (not on "Launch Server").
        ("JupyterHub.implicit_spawn_seconds", 0.5),
        ("Spawner.server_token_scopes", ["users:activity!user", "access:servers!server",
                                         f"{REPORT_SCOPE}!user"]),
        ("JupyterHub.custom_scopes", {REPORT_SCOPE: {
            "description": "Report one's own workbook progress to the class board."}}),
        ("JupyterHub.extra_user_scopes", [f"{REPORT_SCOPE}!user"]),
        ("JupyterHub.load_roles", [
            {"name": TRAINER_ROLE, "description": "The trainer: opens the class board.",
             "scopes": [f"access:services!service={BOARD_SERVICE}"], "users": [room.trainer.name]},
            {"name": CULLER_SERVICE, "description": "Stops servers idle for too long.",
             "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
             "services": [CULLER_SERVICE]},
        ]),
        ("JupyterHub.services", [
            {"name": BOARD_SERVICE, "url": board_url, "display": True, "oauth_no_confirm": True,
             "command": [python, "-m", "xmailnb.classroom.board"],
             "environment": {"XMAILNB_CLASS_DIR": str(room.path), "XMAILNB_CLASS_HUB_URL": public, **log_env}},
            {"name": CULLER_SERVICE, "environment": {"XMAILNB_CLASS_DIR": str(room.path)},
             "command": [python, "-m", "xmailnb.classroom.culler", f"--timeout={idle_timeout}",
                         f"--cull-every={max(5, min(60, idle_timeout // 2))}",
                         "--Application.log_level=ERROR"]},
        ]),
        # The trainer lands on the board, trainees on their own workbook.
        ("JupyterHub.default_url", _Code(f"xmailnb.classroom.hub.landing({str(room.path)!r})")),
        ("JupyterHub.template_vars", _Code(f"xmailnb.classroom.hub.template_vars({str(room.path)!r})")),
    ]
    return HubPlan(room=room, ip=ip, port=port, hub_port=hub_port, proxy_api_port=proxy_api_port,
                   board_port=board_port, url=f"{public}/hub/login", settings=s)

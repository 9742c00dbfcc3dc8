"""``xmailnb classroom init|add|config|serve``: a class of trainees on JupyterHub.

``init`` creates the class folder (roster, password hashes, one sandbox per
person) and prints the passwords once; ``add`` adds trainees; ``config``
prints the JupyterHub configuration; ``serve`` runs JupyterHub (with
configurable-http-proxy, the class board and the idle culler) in the
foreground until Ctrl-C, which stops the hub, the proxy and every server.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from ..classroom import hubconfig, roster
from ..classroom.hubconfig import proxy_command
from ..classroom.procs import stop_leftover_servers
from ..classroom.report import queue_message
from ..classroom.roster import add_trainees, init_class, split_names
from ..dashboard.plan import check_port, is_loopback
from ..errors import UsageError
from ..i18n import Msg
from .output import Help

__all__ = ["register", "run_init", "run_add", "run_config", "run_serve", "run_message"]

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0
STOP_GRACE = 30.0


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    h: Callable[..., str | None] = lambda key, **kw: t.of(f"classroom.help.{key}", **kw)  # noqa: E731
    p = sub.add_parser("classroom", help=h("command"), description=h("description"))
    actions = p.add_subparsers(dest="classroom_action", metavar="ACTION", required=True)

    init = actions.add_parser("init", parents=[common], help=h("init"), description=h("init"))
    init.add_argument("dir", metavar="DIR", help=h("dir"))
    init.add_argument("--trainer", required=True, metavar="NAME", help=h("trainer"))
    init.add_argument("--trainees", required=True, action="append", metavar="NAME[,NAME...]", help=h("trainees"))
    init.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
    init.set_defaults(func=run_init)

    add = actions.add_parser("add", parents=[common], help=h("add"), description=h("add"))
    add.add_argument("dir", metavar="DIR", help=h("dir"))
    add.add_argument("names", nargs="+", metavar="NAME", help=h("names"))
    add.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
    add.set_defaults(func=run_add)

    message = actions.add_parser("message", parents=[common], help=h("message"), description=h("message"))
    message.add_argument("dir", metavar="DIR", help=h("dir"))
    message.add_argument("text", metavar="TEXT", help=h("message_text"))
    message.add_argument("--to", default="", metavar="NAME", help=h("message_to"))
    message.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
    message.set_defaults(func=run_message)

    for name, func in (("config", "run_config"), ("serve", "run_serve")):
        s = actions.add_parser(name, parents=[common], help=h(name), description=h(name))
        s.add_argument("dir", metavar="DIR", help=h("dir"))
        s.add_argument("--ip", default="127.0.0.1", metavar="ADDR", help=h("ip"))
        s.add_argument("--port", type=int, default=8000, metavar="N", help=h("port"))
        s.add_argument("--idle-timeout", type=int, default=3600, metavar="SECONDS", help=h("idle_timeout"))
        s.set_defaults(func=globals()[func])


def _names(values: list[str]) -> list[str]:
    return split_names(values)


def _url_hint(ip: str = "127.0.0.1", port: int = 8000) -> str:
    host = "127.0.0.1" if ip in ("", "0.0.0.0", "::") else (f"[{ip}]" if ":" in ip else ip)
    return f"http://{host}:{port}/hub/login"


def _print_accounts(out: Any, room: Any, passwords: dict[str, str], want_json: bool) -> None:
    accounts = [{"name": a.name, "password": passwords[a.name], "role": a.role}
                for a in room.accounts if a.name in passwords]
    if want_json:
        out.json({"accounts": accounts, "url_hint": _url_hint()})
        return
    width = max(len(a["name"]) for a in accounts)
    out.result(out.t("classroom.accounts.header"))
    for a in accounts:
        role = out.t(f"classroom.role.{a['role']}")
        out.result(f"  {role:<8} {a['name']:<{width}}  {a['password']}")


def run_init(args: argparse.Namespace, out: Any) -> int:
    room, passwords = init_class(args.dir, args.trainer.strip(), _names(args.trainees), lang=out.lang)
    out.say(Msg.of("classroom.init.done", path=str(room.path), count=len(room.trainees)))
    _print_accounts(out, room, passwords, args.json)
    out.say(Msg.of("classroom.passwords.once"))
    out.say(Msg.of("classroom.next", path=str(room.path), url=_url_hint()))
    return 0


def run_add(args: argparse.Namespace, out: Any) -> int:
    room, passwords = add_trainees(args.dir, _names(args.names))
    out.say(Msg.of("classroom.add.done", path=str(room.path), names=", ".join(passwords)))
    _print_accounts(out, room, passwords, args.json)
    out.say(Msg.of("classroom.passwords.once"))
    return 0


def run_message(args: argparse.Namespace, out: Any) -> int:
    """``classroom message DIR TEXT [--to NAME]``: shown in the trainees'
    workbook (``xm-class-message``) within seconds while the class runs,
    else when their workbook next opens."""
    room = roster.load(args.dir)
    entry = queue_message(room.path, [a.name for a in room.trainees], args.to.strip().lower(), args.text)
    if args.json:
        out.json({"queued": True, **entry})
        return 0
    out.say(Msg.of("classroom.message.queued", to=entry["to"] or out.t("classroom.board.to_all")))
    return 0


def _plan(args: argparse.Namespace) -> Any:
    room = roster.load(args.dir)
    return hubconfig.plan(room, ip=args.ip.strip() or "127.0.0.1", port=args.port,
                          proxy=hubconfig.proxy_command(), idle_timeout=max(60, args.idle_timeout))


def run_config(args: argparse.Namespace, out: Any) -> int:
    out.result(_plan(args).render().rstrip("\n"))
    return 0


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait_ready(proc: Any, url: str) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def _stop(proc: Any) -> None:
    """Ask the hub to stop as Ctrl-C would (it stops every server, the proxy
    and the services), then insist."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=STOP_GRACE)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            pass
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:  # anything the hub left in its own process group
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    if proc.poll() is None:
        proc.wait()


def run_serve(args: argparse.Namespace, out: Any) -> int:
    plan = _plan(args)
    check_port(plan.ip, plan.port, domain="classroom")
    for name in ("hub", "proxy_api", "board"):
        check_port("127.0.0.1", plan.ports[name], domain="classroom")
    if importlib.util.find_spec("jupyterhub") is None:
        raise UsageError.of("classroom.jupyterhub.missing", "classroom.jupyterhub.missing.fix")
    if proxy_command() is None:
        raise UsageError.of("classroom.proxy.missing", "classroom.proxy.missing.fix")
    room = plan.room
    config = room.hub_dir / "jupyterhub_config.py"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(plan.render())
    stop_leftover_servers(room)  # a previous run killed hard may have left some
    env = {k: v for k, v in os.environ.items() if k not in ("MAIL_ROOT", "JUPYTERHUB_API_TOKEN")}
    env["CONFIGPROXY_AUTH_TOKEN"] = secrets.token_hex(32)
    env["XMAILNB_CLASS_DIR"] = str(room.path)  # inherited by the proxy: see classroom/procs.py
    env.setdefault("PYTHONUNBUFFERED", "1")

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    # Own session: a Ctrl-C reaches only us, and we pass on exactly one
    # interrupt; if we are killed outright, the hub is told to stop (Linux).
    proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=str(room.hub_dir),
                            env=env, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    try:
        # Through the proxy: ready once the hub's routes are in place.
        health = plan.url.rsplit("/hub/", 1)[0] + "/hub/health"
        if not _wait_ready(proc, health):
            code = proc.poll()
            _stop(proc)
            out.say(Msg.of("classroom.serve.failed", code="-" if code is None else code))
            return 1
        out.say(Msg.of("classroom.serve.ready", url=plan.url, path=str(room.path)))
        out.say(Msg.of("classroom.serve.roles", trainer=room.trainer.name, count=len(room.trainees)))
        if not is_loopback(plan.ip):
            out.say(Msg.of("classroom.serve.remote", ip=plan.ip))
        out.say(Msg.of("classroom.serve.stop_hint"))
        out.stderr.flush()
        code = proc.wait()
        out.say(Msg.of("classroom.serve.failed", code=code))
        return 1
    except KeyboardInterrupt:
        _stop(proc)
        stop_leftover_servers(room)
        out.say(Msg.of("classroom.serve.stopped"))
        return 0
    finally:
        if proc.poll() is None:
            _stop(proc)
        signal.signal(signal.SIGTERM, previous)

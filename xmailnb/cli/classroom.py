"""``xmailnb classroom ...``: a class of trainees on JupyterHub.

``init`` creates the class folder (roster, password hashes, one sandbox per
person) and prints the passwords once; ``add`` adds trainees; ``passwd``
gives someone a new password; ``remove`` takes a trainee out (their folder
archived); ``list`` and ``export`` say who is where; ``config`` prints the
JupyterHub configuration; ``serve`` runs JupyterHub (with
configurable-http-proxy, the class board and the idle culler) in the
foreground until Ctrl-C, which stops the hub, the proxy and every server.
``init``, ``add`` and ``passwd`` can write printable login slips
(``--slips``).  Every one takes ``--json`` and then prints one JSON document.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from ..classroom import admin, hubconfig, procs, roster
from ..classroom.hubconfig import proxy_command
from ..classroom.procs import stop_leftover_servers
from ..classroom.report import queue_message
from ..classroom.roster import add_trainees, init_class, split_names
from ..dashboard.plan import check_port, is_loopback
from ..errors import InputError, UsageError
from ..files import write_atomic
from ..i18n import Msg
from ..logs import child_environ, stderr_level
from .output import Help

__all__ = ["register", "run_init", "run_add", "run_passwd", "run_remove", "run_list", "run_export",
           "run_message", "run_config", "run_serve"]

READY_TIMEOUT = 120.0
STOP_GRACE = 30.0
RECORD_EVERY = 2.0
PORT_RELEASE_WAIT = 10.0


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    h: Callable[..., str | None] = lambda key, **kw: t.of(f"classroom.help.{key}", **kw)  # noqa: E731
    p = sub.add_parser("classroom", help=h("command"), description=h("description"))
    actions = p.add_subparsers(dest="classroom_action", metavar="ACTION", required=True)

    def action(name: str, func: Callable[[argparse.Namespace, Any], int]) -> argparse.ArgumentParser:
        """A sub-command with the class folder and --json, as every one has."""
        a: argparse.ArgumentParser = actions.add_parser(name, parents=[common], help=h(name), description=h(name))
        a.add_argument("dir", metavar="DIR", help=h("dir"))
        a.add_argument("--json", action="store_true", help=t.of("cli.help.json"))
        a.set_defaults(func=func)
        return a

    def slips_and_url(a: argparse.ArgumentParser) -> None:
        a.add_argument("--slips", metavar="FILE.html", help=h("slips"))
        a.add_argument("--url", metavar="URL", help=h("url"))

    init = action("init", run_init)
    init.add_argument("--trainer", required=True, metavar="NAME", help=h("trainer"))
    init.add_argument("--trainees", required=True, action="append", metavar="NAME[,NAME...]", help=h("trainees"))
    slips_and_url(init)

    add = action("add", run_add)
    add.add_argument("names", nargs="+", metavar="NAME", help=h("names"))
    slips_and_url(add)

    passwd = action("passwd", run_passwd)
    passwd.add_argument("name", metavar="NAME", help=h("name"))
    slips_and_url(passwd)

    remove = action("remove", run_remove)
    remove.add_argument("name", metavar="NAME", help=h("name"))

    action("list", run_list)

    export = action("export", run_export)
    export.add_argument("--csv", required=True, metavar="FILE", help=h("csv"))

    message = action("message", run_message)
    message.add_argument("text", metavar="TEXT", help=h("message_text"))
    message.add_argument("--to", default="", metavar="NAME", help=h("message_to"))

    for name, func in (("config", run_config), ("serve", run_serve)):
        s = action(name, func)
        s.add_argument("--ip", default="127.0.0.1", metavar="ADDR", help=h("ip"))
        s.add_argument("--port", type=int, default=8000, metavar="N", help=h("port"))
        s.add_argument("--idle-timeout", type=int, default=3600, metavar="SECONDS", help=h("idle_timeout"))
        s.add_argument("--ssl-cert", metavar="FILE", help=h("ssl_cert"))
        s.add_argument("--ssl-key", metavar="FILE", help=h("ssl_key"))
        s.add_argument("--allow-http", action="store_true", help=h("allow_http"))


def _names(values: list[str]) -> list[str]:
    return split_names(values)


def _url_hint(ip: str = "127.0.0.1", port: int = 8000) -> str:
    host = "127.0.0.1" if ip in ("", "0.0.0.0", "::") else (f"[{ip}]" if ":" in ip else ip)
    return f"http://{host}:{port}/hub/login"


def _address(room: Any, args: argparse.Namespace) -> str:
    """Where people log in: --url, else where the class was last served,
    else the default of `classroom serve`."""
    given = (getattr(args, "url", None) or "").strip()
    if given:
        if not given.startswith(("http://", "https://")) or any(c.isspace() for c in given):
            raise UsageError.of("classroom.url.invalid", "classroom.url.invalid.fix", field="url", url=given)
        return given
    return roster.address(room) or _url_hint()


def _slips_target(args: argparse.Namespace) -> Path | None:
    """Where --slips goes, refused before anything changes when it cannot
    be written (after the passwords are made, a failure would lose them)."""
    where = getattr(args, "slips", None)
    if not where:
        return None
    path = Path(where).expanduser().absolute()
    if path.is_dir() or not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        reason = os.strerror(errno.EISDIR if path.is_dir() else
                             errno.ENOENT if not path.parent.is_dir() else errno.EACCES)
        raise InputError.of("classroom.file.unwritable", "classroom.file.unwritable.fix", field="slips",
                            path=str(path), reason=reason)
    return path


def _write_slips(out: Any, room: Any, passwords: dict[str, str], url: str, path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        write_atomic(path, admin.slips_html(room, passwords, url).encode("utf-8"), 0o600)
    except OSError as exc:
        # The passwords are made: say so and print them anyway.
        out.say(Msg.of("classroom.file.unwritable", path=str(path), reason=exc.strerror or str(exc)))
        return None
    out.say(Msg.of("classroom.slips.written", path=str(path), count=len(passwords)))
    return str(path)


def _print_accounts(out: Any, room: Any, passwords: dict[str, str], args: argparse.Namespace,
                    extra: dict[str, Any] | None = None) -> None:
    url = _address(room, args)
    if getattr(args, "url", None):
        roster.remember_address(room, url, public=True)
    slips = _write_slips(out, room, passwords, url, _slips_target(args))
    accounts = [{"name": a.name, "password": passwords[a.name], "role": a.role}
                for a in room.accounts if a.name in passwords]
    if args.json:
        # url_hint: the same address, under the name scripts used before.
        out.json({"accounts": accounts, "url": url, "url_hint": url, "slips": slips, **(extra or {})})
        return
    width = max(len(a["name"]) for a in accounts)
    out.result(out.t("classroom.accounts.header"))
    for a in accounts:
        role = out.t(f"classroom.role.{a['role']}")
        out.result(f"  {role:<8} {a['name']:<{width}}  {a['password']}")
    out.result(out.t("classroom.accounts.url", url=url))


def run_init(args: argparse.Namespace, out: Any) -> int:
    if args.url:
        _address(None, args)  # a bad --url or --slips is refused before anything is created
    _slips_target(args)
    room, passwords = init_class(args.dir, args.trainer.strip(), _names(args.trainees), lang=out.lang)
    out.say(Msg.of("classroom.init.done", path=str(room.path), count=len(room.trainees)))
    _print_accounts(out, room, passwords, args)
    out.say(Msg.of("classroom.passwords.once"))
    out.say(Msg.of("classroom.next", path=str(room.path), url=_address(room, args)))
    return 0


def run_add(args: argparse.Namespace, out: Any) -> int:
    _address(roster.load(args.dir), args)
    _slips_target(args)
    room, passwords = add_trainees(args.dir, _names(args.names))
    out.say(Msg.of("classroom.add.done", path=str(room.path), names=", ".join(passwords)))
    _print_accounts(out, room, passwords, args)
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


def run_passwd(args: argparse.Namespace, out: Any) -> int:
    _address(roster.load(args.dir), args)
    _slips_target(args)
    name = args.name.strip()
    room, password = roster.set_password(args.dir, name)
    out.say(Msg.of("classroom.passwd.done", name=name))
    _print_accounts(out, room, {name: password}, args)
    out.say(Msg.of("classroom.passwords.once"))
    return 0


def run_remove(args: argparse.Namespace, out: Any) -> int:
    name = args.name.strip()
    account = roster.load(args.dir).account(name)
    if account is not None and account.role == "trainee":
        # Their workbook, if it runs on this machine, stops before its folder is archived.
        procs.stop_person(roster.load(args.dir), name)
    room, moved = roster.remove_trainee(args.dir, name)
    if moved is not None:
        out.say(Msg.of("classroom.remove.done", name=name, path=str(moved)))
    else:
        out.say(Msg.of("classroom.remove.done_nothing", name=name))
    if args.json:
        out.json({"removed": name, "archived": str(moved) if moved else None, "trainees": len(room.trainees)})
    return 0


def run_list(args: argparse.Namespace, out: Any) -> int:
    room = roster.load(args.dir)
    doc = admin.list_doc(room, _address(room, args))
    if args.json:
        out.json(doc)
        return 0
    width = max(len(a.name) for a in room.accounts)
    out.result(out.t("classroom.list.header", path=str(room.path), url=doc["url"]))
    for entry in doc["accounts"]:
        role = out.t(f"classroom.role.{entry['role']}")
        ports = entry["ports"]
        out.result(f"  {role:<8} {entry['name']:<{width}}  {entry['lang']}  "
                   f"smtp={ports['smtp']} pop3s={ports['pop3s']}")
    return 0


def run_export(args: argparse.Namespace, out: Any) -> int:
    room = roster.load(args.dir)
    path = Path(args.csv).expanduser().absolute()
    records = admin.trainee_records(room)
    try:
        write_atomic(path, admin.export_csv(records), 0o600)
    except OSError as exc:
        raise InputError.of("classroom.file.unwritable", "classroom.file.unwritable.fix", field="csv",
                            path=str(path), reason=exc.strerror or str(exc)) from None
    finished = sum(r.finished for r in records)
    out.say(Msg.of("classroom.export.done", path=str(path), count=len(records), finished=finished))
    if args.json:
        out.json({"csv": str(path), "columns": list(admin.CSV_COLUMNS),
                  "trainees": [r.to_json() for r in records]})
    return 0


def _plan(args: argparse.Namespace) -> Any:
    room = roster.load(args.dir)
    ip = args.ip.strip() or "127.0.0.1"
    cert, key = (args.ssl_cert or "").strip(), (args.ssl_key or "").strip()
    if bool(cert) != bool(key):
        raise UsageError.of("classroom.ssl.pair", "classroom.ssl.pair.fix", field="ssl_cert")
    for option, value in (("--ssl-cert", cert), ("--ssl-key", key)):
        if value and not os.path.isfile(value):
            raise InputError.of("classroom.ssl.missing", "classroom.ssl.missing.fix", field=option[2:],
                                option=option, path=value)
    if not cert and not is_loopback(ip) and not args.allow_http:
        # Passwords would cross the room's network in clear text.
        raise UsageError.of("classroom.serve.http_refused", "classroom.serve.http_refused.fix", field="ip", ip=ip)
    return hubconfig.plan(room, ip=ip, port=args.port, proxy=hubconfig.proxy_command(),
                          idle_timeout=max(60, args.idle_timeout),
                          ssl_cert=os.path.abspath(cert) if cert else None,
                          ssl_key=os.path.abspath(key) if key else None,
                          log_level=stderr_level(getattr(args, "verbose", False)))


def run_config(args: argparse.Namespace, out: Any) -> int:
    plan = _plan(args)
    if args.json:
        out.json({"config": plan.render(), "url": plan.url, "ports": plan.ports})
    else:
        out.result(plan.render().rstrip("\n"))
    return 0


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _answers(url: str, headers: dict[str, str] | None = None) -> bytes | None:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.read() if response.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _wait_ready(proc: Any, plan: Any, proxy_token: str, room: Any) -> bool:
    """Wait for the hub (its own health URL) and then for the proxy's route
    to it (the proxy's API), without a request through the proxy before
    its routes are in place: the proxy would log each one as an error."""
    deadline = time.monotonic() + READY_TIMEOUT
    hub_health = f"http://127.0.0.1:{plan.hub_port}/hub/health"
    routes = f"http://127.0.0.1:{plan.proxy_api_port}/api/routes"
    hub_up = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        procs.record(room, [proc.pid, *procs.descendants(proc.pid)])
        if not hub_up:
            hub_up = _answers(hub_health) is not None
        if hub_up:
            body = _answers(routes, {"Authorization": f"token {proxy_token}"})
            try:
                if body is not None and "/" in json.loads(body):
                    return True
            except (ValueError, TypeError):
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


def _free_ports(plan: Any, waited: bool) -> None:
    """Refuse clearly when a port of the class is taken.  After leftovers
    were stopped, their ports may take a moment to be released."""
    deadline = time.monotonic() + (PORT_RELEASE_WAIT if waited else 0.0)
    while True:
        try:
            check_port(plan.ip, plan.port, domain="classroom")
            for name in ("hub", "proxy_api", "board"):
                check_port("127.0.0.1", plan.ports[name], domain="classroom")
            return
        except InputError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def run_serve(args: argparse.Namespace, out: Any) -> int:
    plan = _plan(args)
    room = plan.room
    running = procs.serving(room)
    if running is not None:
        raise InputError.of("classroom.serve.running", "classroom.serve.running.fix", path=str(room.path),
                            pid=running.pid)
    # A previous run whose hub was killed outright may have left its proxy,
    # board, culler, servers and kernels holding the ports: stop those
    # (this class's own, see classroom/procs.py) before looking at the ports.
    leftovers = stop_leftover_servers(room)
    if leftovers:
        out.say(Msg.of("classroom.serve.leftovers", count=len(leftovers)))
    _free_ports(plan, bool(leftovers))
    procs.claim(room)
    if importlib.util.find_spec("jupyterhub") is None:
        raise UsageError.of("classroom.jupyterhub.missing", "classroom.jupyterhub.missing.fix")
    if proxy_command() is None:
        raise UsageError.of("classroom.proxy.missing", "classroom.proxy.missing.fix")
    config = room.hub_dir / "jupyterhub_config.py"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(plan.render())
    env = {k: v for k, v in child_environ(stderr_level(args.verbose)).items()
           if k not in ("MAIL_ROOT", "JUPYTERHUB_API_TOKEN")}
    proxy_token = secrets.token_hex(32)
    env["CONFIGPROXY_AUTH_TOKEN"] = proxy_token
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
        procs.record(room, [proc.pid])
        if not _wait_ready(proc, plan, proxy_token, room):
            code = proc.poll()
            _stop(proc)
            stop_leftover_servers(room)
            raise InputError.of("classroom.serve.failed", "classroom.serve.failed.fix",
                                code="-" if code is None else code)
        roster.remember_address(room, plan.url)
        out.say(Msg.of("classroom.serve.ready", url=plan.url, path=str(room.path)))
        out.say(Msg.of("classroom.serve.roles", trainer=room.trainer.name, count=len(room.trainees)))
        if not is_loopback(plan.ip) and not plan.url.startswith("https://"):
            out.say(Msg.of("classroom.serve.remote", ip=plan.ip))
        out.say(Msg.of("classroom.serve.stop_hint"))
        if args.json:
            out.json({"url": plan.url, "path": str(room.path), "pid": proc.pid, "ports": plan.ports})
            out.flush()
        out.stderr.flush()
        while True:
            try:
                code = proc.wait(timeout=RECORD_EVERY)
                break
            except subprocess.TimeoutExpired:
                # Kernels and servers come and go: keep the record current.
                procs.record(room, [proc.pid, *procs.descendants(proc.pid)])
        # The hub ended on its own (or was killed): nothing of the class may stay.
        stop_leftover_servers(room)
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

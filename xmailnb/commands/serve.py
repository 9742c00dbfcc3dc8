"""``xmailnb serve``: the whole workbook as one dashboard in the browser (Voilà).

The server runs as a ``python -m voila`` subprocess built by
:mod:`xmailnb.serving`; this module starts it, waits until it answers, says
where it is and stops it cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

__all__ = ["register", "run"]

READY_TIMEOUT = 90.0  # seconds; a cold start on a slow Windows box takes a while
STOP_GRACE = 10.0


def register(sub: Any, common: argparse.ArgumentParser, lang: str) -> None:
    from ..i18n import text
    from ..serving import DEFAULT_PORT

    t: Callable[..., str] = lambda key, **kw: text(f"serve.help.{key}", lang, **kw)  # noqa: E731
    p = sub.add_parser("serve", parents=[common], help=t("command"), description=t("description"))
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N", help=t("port", port=DEFAULT_PORT))
    p.add_argument("--ip", default="127.0.0.1", metavar="ADDR", help=t("ip"))
    p.add_argument("--token", default=None, metavar="T", help=t("token"))
    p.add_argument("--no-browser", dest="open_browser", action="store_false", help=t("no_browser"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Any) -> int:
    import signal
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from .. import serving
    from ..cli import EXIT_OK, EXIT_REFUSED, mailroot_from
    from ..errors import UsageError
    from ..i18n import Msg
    from ..mailroot import describe

    mr = mailroot_from(args, out)  # says so on stderr when it is the sandbox
    plan = serving.plan(mr, lang=out.lang, port=args.port, ip=args.ip, token=args.token)
    if not plan.notebook.is_file():
        raise UsageError.of("serve.no_notebook", "serve.no_notebook.fix", path=str(plan.notebook))
    serving.check_port(plan.ip, plan.port)
    if not mr.is_sandbox:
        out.say(describe(mr))

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="xmailnb-serve-") as work:
        plan.write_config(Path(work))
        popen_kw: dict[str, Any] = {}
        if sys.platform == "win32":
            popen_kw["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            # Own session: a Ctrl-C reaches only us, and we pass on exactly one
            # interrupt (two would cut Voilà's kernel shutdown short).
            popen_kw["start_new_session"] = True
        proc = subprocess.Popen(plan.argv, env=plan.env, cwd=work, stdin=subprocess.DEVNULL, **popen_kw)
        try:
            if not _wait_ready(proc, plan.ip, plan.port):
                code = proc.poll()
                _stop(proc)
                out.say(Msg.of("serve.failed", code="-" if code is None else code))
                return EXIT_REFUSED
            out.say(Msg.of("serve.ready", url=plan.url))
            if plan.token_generated:
                out.say(Msg.of("serve.token.generated", token=plan.token))
            if not serving.is_loopback(plan.ip):
                out.say(Msg.of("serve.remote", ip=plan.ip))
            out.say(Msg.of("serve.stop_hint"))
            if args.open_browser:
                import webbrowser

                try:
                    webbrowser.open(plan.url)
                except Exception:  # no browser on a server: the URL above is enough
                    pass
            code = proc.wait()
            out.say(Msg.of("serve.failed", code=code))
            return EXIT_REFUSED
        except KeyboardInterrupt:
            _stop(proc)
            out.say(Msg.of("serve.stopped"))
            return EXIT_OK
        finally:
            if proc.poll() is None:
                _stop(proc)
            signal.signal(signal.SIGTERM, previous)


def _wait_ready(proc: Any, ip: str, port: int) -> bool:
    """Poll until the server accepts connections; False if it exits first."""
    import socket
    import time

    host = "127.0.0.1" if ip in ("0.0.0.0", "") else "::1" if ip == "::" else ip.strip("[]")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _stop(proc: Any) -> None:
    """Ask the server to stop as Ctrl-C would (it shuts its kernels down), then insist."""
    import signal
    import subprocess
    import sys

    if proc.poll() is not None:
        return
    try:
        if sys.platform == "win32":
            proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=STOP_GRACE)
        return
    except subprocess.TimeoutExpired:
        pass
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting politely
        pass
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

"""``xmailnb serve``: the whole workbook as one dashboard in the browser (Voilà).

The server runs as a subprocess built by :mod:`xmailnb.dashboard.plan` (Voilà behind
a door, :mod:`xmailnb.dashboard.server`); this module starts it, waits until
it answers over HTTP, says where it is and how to log in, opens the browser
with a one-time login address, and stops it cleanly on Ctrl-C or SIGTERM
(and the server stops by itself if this process is killed).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path
from typing import Any, Callable

from ..dashboard import plan as serving
from ..dashboard.plan import (
    DEFAULT_MAX_PAGES,
    DEFAULT_PAGE_TIMEOUT,
    DEFAULT_PORT,
    MIN_TOKEN_LENGTH,
    TOKEN_ENV,
)
from ..errors import UsageError
from ..i18n import LANGUAGES, Msg
from ..logs import child_environ, stderr_level
from ..mailroot.layout import describe
from .output import EXIT_OK, EXIT_REFUSED, Help, mailroot_from

__all__ = ["register", "run"]

READY_TIMEOUT = 120.0  # seconds; a cold start on a slow Windows box takes a while
STOP_GRACE = 25.0  # the server stops its kernels first (it gives up on them after 20 s)


def register(sub: Any, common: argparse.ArgumentParser, t: Help) -> None:
    h: Callable[..., str | None] = lambda key, **kw: t.of(f"serve.help.{key}", **kw)  # noqa: E731
    p = sub.add_parser("serve", parents=[common], help=h("command"), description=h("description"))
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N", help=h("port", port=DEFAULT_PORT))
    p.add_argument("--ip", default="127.0.0.1", metavar="ADDR", help=h("ip"))
    p.add_argument("--token-file", default=None, metavar="FILE",
                   help=h("token_file", env=TOKEN_ENV, minimum=MIN_TOKEN_LENGTH))
    # Still recognised, to refuse it with a clear message: a token on the
    # command line is visible to every local user in `ps`.
    p.add_argument("--token", default=None, metavar="T", help=h("token", env=TOKEN_ENV))
    p.add_argument("--max-pages", type=int, default=DEFAULT_MAX_PAGES, metavar="N",
                   help=h("max_pages", default=DEFAULT_MAX_PAGES))
    p.add_argument("--page-timeout", type=int, default=DEFAULT_PAGE_TIMEOUT, metavar="S",
                   help=h("page_timeout", default=DEFAULT_PAGE_TIMEOUT))
    p.add_argument("--no-browser", dest="open_browser", action="store_false", help=h("no_browser"))
    p.set_defaults(func=run)


def forced_language(args: argparse.Namespace, environ: Any = None) -> str | None:
    """The language every page is forced to: ``--lang`` if given, else a
    valid ``XMAILNB_LANG``; ``None`` lets each page follow its browser (the
    server's locale never forces a language on the pages)."""
    if getattr(args, "lang", None):
        return str(args.lang)
    env = os.environ if environ is None else environ
    value = env.get("XMAILNB_LANG", "").strip().lower()
    return value if value in LANGUAGES else None


def run(args: argparse.Namespace, out: Any) -> int:
    if args.token is not None:
        raise UsageError.of("serve.token.cli", "serve.token.cli.fix", field="token", env=serving.TOKEN_ENV)
    token, source = serving.resolve_token(args.token_file)
    mr = mailroot_from(args, out)  # says so on stderr when it is the sandbox
    plan = serving.plan(mr, lang=forced_language(args), port=args.port, ip=args.ip, token=token,
                        token_source=source, max_pages=args.max_pages, page_timeout=args.page_timeout,
                        environ=child_environ(stderr_level(args.verbose)))
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
            # stop request (two would cut the kernels' shutdown short).
            popen_kw["start_new_session"] = True
            if sys.platform.startswith("linux"):
                popen_kw["preexec_fn"] = _die_with_parent
        proc = subprocess.Popen(plan.argv, env=plan.env, cwd=work, stdin=subprocess.DEVNULL, **popen_kw)
        try:
            if not _wait_ready(proc, plan.url, plan.token):
                code = proc.poll()
                _stop(proc)
                out.say(Msg.of("serve.failed", code="-" if code is None else code))
                return EXIT_REFUSED
            out.say(Msg.of("serve.ready", url=plan.url))
            if plan.token_generated:
                out.say(Msg.of("serve.login.generated", url=plan.login_url))
            else:
                where = args.token_file if plan.token_source == "file" else serving.TOKEN_ENV
                out.say(Msg.of("serve.login.given", url=plan.url, source=where))
            if not serving.is_loopback(plan.ip):
                out.say(Msg.of("serve.remote", ip=plan.ip))
            if args.open_browser and _open_browser(plan.open_url):
                out.say(Msg.of("serve.browser_opened"))
            out.say(Msg.of("serve.stop_hint"))
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


def _die_with_parent() -> None:
    """In the server process (Linux): receive SIGTERM when ``xmailnb serve``
    dies, however it dies (kill -9 included), so no server is left behind
    holding the port and its kernels."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _open_browser(url: str) -> bool:
    try:
        return bool(webbrowser.open(url))
    except (webbrowser.Error, OSError):  # no browser on a server: the address printed is enough
        return False


def _wait_ready(proc: Any, url: str, token: str) -> bool:
    """Poll the server's status page over HTTP (with the token) until it
    answers; False if the server exits first or never answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url + "xmailnb/status", headers={"Authorization": f"token {token}"})
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with opener.open(request, timeout=5) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError:
            pass  # answering, but not (yet) with the status: keep polling
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return False


def _stop(proc: Any) -> None:
    """Ask the server to stop (it shuts its kernels down), then insist.

    SIGTERM, not SIGINT: a process started in the background by a shell
    inherits SIGINT ignored, and the server would not hear it."""
    if proc.poll() is not None:
        return
    try:
        if sys.platform == "win32":
            proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            proc.send_signal(signal.SIGTERM)
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

"""A trainee's single-user server: the workbook dashboard behind JupyterHub.

JupyterHub starts ``python -m xmailnb.classroom.singleuser`` for each person
(:class:`xmailnb.classroom.hub.ClassSpawner` locally; DockerSpawner or
KubeSpawner elsewhere, see ``docs/classroom.md``).  It is Voilà, serving the
same dashboard notebook and ``xmailnb`` template as ``xmailnb serve``, with:

* JupyterHub's OAuth as its login (the identity provider and authorizer of
  ``jupyterhub-singleuser``, through the slim client of
  :mod:`xmailnb.classroom.hubauth`, which keeps the hub's database layer out
  of every trainee's server): only the owner gets in.
* Only the routes the dashboard needs.  There is no Jupyter server behind
  it: no contents, terminals, kernel creation, lab or file download API; the
  dashboard itself is served at the server's root only (anything else is 404).
* One preheated kernel, and no second one while the page is open: the pool
  is refilled when the page's kernel goes (closed page, culled kernel), so a
  trainee costs one server plus one kernel, and opening the page is as quick
  as with ``xmailnb serve``.
* A reporter: twice a second it looks at the sandbox's files and the page's
  ``class-page.json`` (a few ``stat``) and whether a page is open; when
  something changed (and every 10 s anyway) it tells the board "ask me"
  with the server's JupyterHub token.  That call carries no progress: a
  token a trainee mints at ``/hub/token`` could send anything, so the board
  believes only what it reads itself.
* ``POST <prefix>xmailnb/progress``: the board (and only the board service,
  as the hub tells from its token) reads the progress of the sandbox
  (:mod:`xmailnb.classroom.readout`, in a short-lived child process, only
  when the sandbox changed) and what the page said, and
  hands over the trainer's messages, a lowered hand and a reset asked
  while this server was not running.
* ``POST <prefix>xmailnb/reset``: the board asks for a fresh sandbox; the
  open page then starts again at step 1 with its banner
  (:mod:`xmailnb.ui.reset_watch`).
* ``<prefix>xmailnb/door.js``: the page's "connection lost" banner, as in
  ``xmailnb serve``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from jupyterhub import __version__
from tornado import httpclient, ioloop, web
from traitlets import Float, default
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

from .. import boundedjson, clock
from ..dashboard.plan import MAX_MESSAGE_BYTES, VOILA_ARGS, dashboard_notebook, share_dir
from ..dashboard.server import DoorScriptHandler
from ..logs import follow_in_service
from ..mailroot.layout import MailRoot
from ..mailroot.resolve import resolve
from ..mailroot.sandbox import reset_sandbox
from .hubauth import HubIdentityProvider, HubOAuthClient
from ..i18n import LANGUAGES, text
from ..status import Status
from .report import BOARD_SERVICE, CLASS_ENV, PAGE_FILE, read_page, signature, write_inbox

__all__ = ["ClassVoila", "ClassIdentityProvider", "ReadoutError", "Reporter", "Sandbox", "TraineeKernelManager",
           "main", "read_progress"]

log = logging.getLogger(__name__)

#: The reporter's look at the sandbox (a dozen ``stat``): twice a second, as
#: reading the progress in a child process (~0.3 s of CPU) comes after it.
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 10.0
ACTIVITY_SECONDS = 30.0
#: The child that reads a sandbox's progress is killed after this long ...
READ_SECONDS = 30.0
#: ... or when it prints more than this (a report is some 10 KiB).
READ_MAX_BYTES = boundedjson.MAX_BYTES
_SECRET_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
_hub_auth: HubOAuthClient | None = None


class ClassIdentityProvider(HubIdentityProvider):
    """JupyterHub's OAuth identity provider, with its routes under the
    server's prefix (Voilà adds identity routes as given)."""

    def __init__(self, token: Any = None, **kwargs: Any) -> None:
        # Voilà passes token=""; the hub's token is the identity here.
        super().__init__(**kwargs)

    @default("hub_auth")
    def _class_hub_auth(self) -> HubOAuthClient:
        return _hub_auth if _hub_auth is not None else HubOAuthClient()

    def get_handlers(self) -> list[Any]:
        base = getattr(self.parent, "base_url", "/")
        return [(url_path_join(base, path), *rest) for path, *rest in super().get_handlers()]


class Sandbox:
    """The trainee's sandbox as the board reads it: the progress (read again
    only when a watched file changed) and what the page said.

    The progress is read in a short-lived child process
    (:mod:`xmailnb.classroom.readout`): the progress rule needs cryptography,
    which would otherwise stay loaded in this server for its whole life
    (about 11 MiB of every trainee's server, figure 7b).  One reading at a
    time; the last one is kept, keyed by the sandbox's :func:`signature`.
    """

    def __init__(self, mr: MailRoot, in_use: Callable[[], bool] = lambda: False) -> None:
        self.mailroot = mr
        self.data_dir = mr.path.parent
        self.in_use = in_use
        self._cached: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._reading = asyncio.Lock()
        self.read_seconds = READ_SECONDS
        self.read_max_bytes = READ_MAX_BYTES

    def signature(self) -> tuple[Any, ...]:
        try:
            st = os.stat(self.data_dir / PAGE_FILE)
            page: Any = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            page = None
        return (signature(self.mailroot.path), page, self.in_use())

    async def progress(self) -> dict[str, Any]:
        """The sandbox's progress, read again when it changed since the last
        reading; a report that says it could not be read when the reading
        failed (then it is tried again at the next ask)."""
        async with self._reading:
            sig = signature(self.mailroot.path)
            if self._cached is not None and self._cached[0] == sig:
                return self._cached[1]
            try:
                report = await read_progress(self.mailroot.path, self.read_seconds, self.read_max_bytes)
            except ReadoutError as exc:
                log.warning("reading the sandbox's progress failed: %s", exc)
                return self._unreadable()
            self._cached = (sig, report)
            return report

    def _unreadable(self) -> dict[str, Any]:
        """The last reading (if any) with a problem on top: this one failed."""
        last = dict(self._cached[1]) if self._cached is not None else {
            "steps": {}, "last_change": None, "problems": [], "findings": [], "history": [], "generation": 0}
        problem = {"check": "classroom.progress.unreadable", "status": str(Status.ERROR),
                   "message": {lang: text("classroom.progress.unreadable", lang) for lang in LANGUAGES},
                   "fix": {lang: text("classroom.progress.unreadable.fix", lang) for lang in LANGUAGES}}
        last["problems"] = [problem, *last.get("problems", [])]
        return last

    async def answer(self, asked: dict[str, Any]) -> dict[str, Any]:
        """Apply what the board hands over (*asked*), then say where the trainee is."""
        loop = asyncio.get_running_loop()
        if asked.get("reset") is True:
            await loop.run_in_executor(None, _reset, self.mailroot)
        report = await self.progress()
        inbox = asked.get("inbox")
        if isinstance(inbox, dict):
            await loop.run_in_executor(None, write_inbox, self.data_dir, inbox)
        page = await loop.run_in_executor(None, read_page, self.data_dir)
        return {"report": report, "page": page, "open": self.in_use()}


class ReadoutError(Exception):
    """The child process did not give a report (see :func:`read_progress`)."""


async def _read_at_most(stream: asyncio.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await stream.read(64 * 1024)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def read_progress(path: Path, timeout: float = READ_SECONDS,
                        max_bytes: int = READ_MAX_BYTES) -> dict[str, Any]:
    """The progress of the sandbox at *path*, as
    ``python -m xmailnb.classroom.readout`` prints it, read without blocking
    the event loop.

    Raises:
        ReadoutError: the child failed, took longer than *timeout* seconds
            (it is killed), printed more than *max_bytes* or not a JSON object.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xmailnb.classroom.readout", "--at", clock.now().isoformat(), str(path),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        out, err = await asyncio.wait_for(
            asyncio.gather(_read_at_most(proc.stdout, max_bytes), _read_at_most(proc.stderr, 64 * 1024)), timeout)
        if len(out) > max_bytes:
            raise ReadoutError(f"more than {max_bytes} bytes")
        code = await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        raise ReadoutError(f"no answer within {timeout:g} s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if code != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise ReadoutError(f"exit status {code}: {' '.join(tail)}")
    try:
        doc = boundedjson.loads(out, name="readout", max_bytes=max_bytes)
    except ValueError as exc:
        raise ReadoutError(str(exc)) from None
    if not isinstance(doc, dict):
        raise ReadoutError("not a JSON object")
    return doc


class Reporter:
    """Tells the board to read this sandbox again when something changed."""

    def __init__(self, sandbox: Sandbox, board_url: str, token: str) -> None:
        self.sandbox = sandbox
        self.url = url_path_join(board_url, "api/report")
        self.token = token
        self._signature: tuple[Any, ...] | None = None
        self._sent = 0.0
        self._busy = False
        self.client = httpclient.AsyncHTTPClient()

    async def tick(self) -> None:
        if self._busy:
            return
        now_sig = self.sandbox.signature()
        if now_sig == self._signature and time.monotonic() - self._sent < HEARTBEAT_SECONDS:
            return
        await self.report(now_sig)

    async def report(self, sig: tuple[Any, ...] | None = None) -> None:
        self._busy = True
        try:
            sig = sig if sig is not None else self.sandbox.signature()
            response = await self.client.fetch(
                self.url, method="POST", body=b"{}",
                headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
                request_timeout=10, raise_error=False, follow_redirects=False)
            if response.code != 200:
                log.warning("the class board did not take the report: HTTP %s", response.code)
                return
            self._signature, self._sent = sig, time.monotonic()
        except Exception as exc:  # the board is down or restarting: try again later
            log.warning("reporting progress to the class board failed: %s", exc)
        finally:
            self._busy = False


class Activity:
    """Tells the hub the trainee is active while a page of theirs is open
    (a kernel with a connection), so the idle culler stops only servers
    nobody uses.  Like jupyterhub-singleuser's ``JUPYTERHUB_ACTIVITY_URL``."""

    def __init__(self, app: Voila, url: str, token: str, interval: float) -> None:
        self.app, self.url, self.token, self.interval = app, url, token, interval
        self.client = httpclient.AsyncHTTPClient()

    async def tick(self) -> None:
        if not _in_use(self.app):
            return
        now = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        server = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        body = json.dumps({"servers": {server: {"last_activity": now}}, "last_activity": now})
        try:
            await self.client.fetch(self.url, method="POST", body=body, request_timeout=10, raise_error=False,
                                    headers={"Authorization": f"token {self.token}",
                                             "Content-Type": "application/json"})
        except Exception as exc:
            log.warning("telling the hub about activity failed: %s", exc)


def _in_use(app: Voila) -> bool:
    """A page is open: a kernel of this server has a connection."""
    km = getattr(app, "kernel_manager", None)
    return isinstance(km, TraineeKernelManager) and km.page_open()


def _reset(mr: MailRoot) -> int:
    return reset_sandbox(mr.path, by="trainer").generation.number


class VersionHandler(web.RequestHandler):
    """``<prefix>api``: the hub asks which JupyterHub a server speaks."""

    def get(self) -> None:
        self.set_header("X-JupyterHub-Version", __version__)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"version": __version__}))


async def _from_board(handler: web.RequestHandler) -> None:
    """403 unless the request carries the board service's own token (not
    the trainee's browser, whose cookie also reaches this server, not a
    token the trainee minted, not another user)."""
    scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip() or _hub_auth is None:
        raise web.HTTPError(403)
    model = await _hub_auth.user_for_token(token.strip())
    if not model or model.get("kind") != "service" or model.get("name") != BOARD_SERVICE:
        raise web.HTTPError(403)


class ResetHandler(web.RequestHandler):
    """``POST <prefix>xmailnb/reset``: the board service resets this sandbox."""

    def initialize(self, sandbox: Sandbox, reporter: Reporter | None) -> None:
        self.sandbox = sandbox
        self.reporter = reporter

    async def post(self) -> None:
        await _from_board(self)
        loop = asyncio.get_running_loop()
        number = await loop.run_in_executor(None, _reset, self.sandbox.mailroot)
        if self.reporter is not None:
            await self.reporter.report()
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"generation": number}))


class ProgressHandler(web.RequestHandler):
    """``POST <prefix>xmailnb/progress``: the board service reads the progress
    (and hands over messages, a lowered hand, a reset it kept)."""

    def initialize(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def post(self) -> None:
        await _from_board(self)
        try:
            asked = boundedjson.loads(self.request.body or b"{}", name="xmailnb/progress")
        except ValueError:
            raise web.HTTPError(400) from None
        if not isinstance(asked, dict):
            raise web.HTTPError(400)
        answer = await self.sandbox.answer(asked)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(answer))


class DashboardHandler(TornadoVoilaHandler):  # type: ignore[misc]  # Voilà ships no types
    """The dashboard page; it also sets the ``_xsrf`` cookie, which the
    page's "shut my kernel down" beacon on leaving sends back (without it
    the XSRF check refuses the beacon and the kernel lingers)."""

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        await super().prepare(*args, **kwargs)
        if self.current_user is not None:
            _ = self.xsrf_token  # sets the cookie


class TraineeKernelManager(AsyncMappingKernelManager):
    """One kernel per trainee: Voilà's ``multi_kernel_manager_class`` here.

    Voilà's pool (``--preheat_kernel``, one kernel) starts a new kernel as
    soon as a page takes the preheated one; a trainee would then cost two.
    Here the pool is refilled when no kernel is left, not before:

    * once the first kernel starts, the pool's size (Voilà's public
      ``kernel_pools_config``) is 0, so Voilà's refill after a page took the
      preheated kernel starts nothing;
    * when a kernel is shut down (the page's "shut my kernel down" on
      leaving, the culler) and none is left, one is preheated at once;
    * every :attr:`check_seconds` the same is looked at, whatever took the
      kernels away (one that died and was given up, a page that left
      without a word and was culled);
    * a kernel that fails to start is tried again after a pause (the pool's
      preheat then still gives the next page a kernel instead of an error),
      until it starts or the server stops.

    Voilà makes its pool class a subclass of this one, so everything here
    goes through the public methods of jupyter_server's kernel manager
    (``start_kernel``, ``shutdown_kernel``, ``shutdown_all``,
    ``list_kernels``) and of Voilà's pool (``fill_if_needed``,
    ``get_pool_size``, ``kernel_pools_config``, ``notebook_path``).
    """

    check_seconds = Float(5.0, config=True, help="Seconds between two looks for a server left with no kernel.")
    retry_seconds = Float(5.0, config=True, help="Seconds before a kernel that failed to start is tried again.")

    #: Voilà's pool settings (a trait of the pool class Voilà derives from this one).
    kernel_pools_config: dict[str, Any]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # jupyter_server's kernel manager is not annotated
        self.stopping = False
        self._starting = 0
        self._held = False
        self._watch: ioloop.PeriodicCallback | None = None
        #: the kernel manager of each start under way, by kernel id
        self._attempts: dict[str, Any] = {}

    def page_open(self) -> bool:
        """A page is open: a kernel of this server has a connection."""
        return any(model.get("connections", 0) > 0 for model in self.list_kernels())  # type: ignore[no-untyped-call]

    def pre_start_kernel(self, kernel_name: str | None, kwargs: Any) -> tuple[Any, str, str]:
        km, name, kernel_id = super().pre_start_kernel(kernel_name, kwargs)
        self._attempts[kernel_id] = km
        return km, name, kernel_id

    async def start_kernel(self, **kwargs: Any) -> str:  # type: ignore[override]
        self._hold_pool()
        # Every attempt under one id: jupyter_client keeps the id of a start
        # that failed among its pending kernels until one under it succeeds
        # (a stray id there would fail the server's shutdown_all).
        kernel_id: str = kwargs.setdefault("kernel_id", str(uuid.uuid4()))
        self._starting += 1
        try:
            while True:
                try:
                    started: str = await super().start_kernel(**kwargs)
                    return started
                except Exception as exc:
                    self._forget_attempt(kernel_id)
                    if self.stopping:
                        raise
                    log.warning("a kernel did not start (%s); trying again in %g s", exc, self.retry_seconds)
                    await asyncio.sleep(self.retry_seconds)
        finally:
            self._starting -= 1
            self._attempts.pop(kernel_id, None)

    def _forget_attempt(self, kernel_id: str) -> None:
        """Remove the files a failed start wrote, now.

        The next attempt writes its connection file under the same name
        (``kernel-<id>.json``).  Left to itself, the failed attempt's
        manager removes that file whenever it is garbage-collected, which
        may be after the next attempt wrote it and before its kernel read
        it: that kernel then listens on ports of its own choosing and never
        answers ("Kernel didn't respond in 60 seconds").
        """
        km = self._attempts.pop(kernel_id, None)
        if km is None:
            return
        try:
            km.cleanup_connection_file()
            km.cleanup_ipc_files()
        except OSError as exc:
            log.info("files of a kernel that did not start not removed: %s", exc)

    async def shutdown_kernel(self, kernel_id: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # jupyter_client's run_sync type
        result = await super().shutdown_kernel(kernel_id, *args, **kwargs)  # type: ignore[no-untyped-call]
        self.keep_one_ready()
        return result

    async def shutdown_all(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # jupyter_client's run_sync type
        self.stopping = True
        if self._watch is not None:
            self._watch.stop()
        return await super().shutdown_all(*args, **kwargs)

    def keep_one_ready(self) -> None:
        """Preheat a kernel if none is left (running, starting or in the pool)."""
        if not self._held or self.stopping or self._starting or self.list_kernel_ids():
            return
        fill: Callable[..., None] | None = getattr(self, "fill_if_needed", None)
        pool_size: Callable[[str], int] | None = getattr(self, "get_pool_size", None)
        notebook: str | None = getattr(self, "notebook_path", None)
        if fill is None or pool_size is None or notebook is None or pool_size(notebook) > 0:
            return
        self._set_pool_size(notebook, 1)
        try:
            fill(delay=0, notebook_name=notebook)
        finally:
            self._set_pool_size(notebook, 0)

    def _hold_pool(self) -> None:
        """From the first kernel on, Voilà's own refill starts nothing."""
        if self._held or not hasattr(self, "kernel_pools_config"):
            return
        self._held = True
        self._set_pool_size(getattr(self, "notebook_path", None), 0)
        self._watch = ioloop.PeriodicCallback(self.keep_one_ready, self.check_seconds * 1000)
        self._watch.start()

    def _set_pool_size(self, notebook: str | None, size: int) -> None:
        pools = dict(self.kernel_pools_config)
        default = {**pools.get("default", {}), "pool_size": size}
        pools["default"] = default
        if notebook is not None and notebook in pools:
            pools[notebook] = {**pools[notebook], "pool_size": size}
        self.kernel_pools_config = pools


class ClassVoila(Voila):  # type: ignore[misc]  # Voilà ships no types
    """Voilà with the class's routes, pool policy and reporter."""

    name = "xmailnb-classroom-singleuser"
    reporter: Reporter | None = None
    activity: Activity | None = None
    sandbox: Sandbox

    def start(self) -> None:
        # JupyterHub stops a server with SIGINT first, but starts it with
        # SIGINT ignored: handle it like SIGTERM (Voilà's own handler).
        signal.signal(signal.SIGINT, signal.getsignal(signal.SIGTERM))
        super().start()

    def stop(self) -> None:
        # Shut the kernels down before leaving, rather than letting them
        # notice their parent is gone mid-reply.
        try:
            asyncio.get_event_loop().run_until_complete(
                asyncio.wait_for(self.kernel_manager.shutdown_all(now=True), 10))
        except Exception as exc:
            log.info("kernels not shut down cleanly: %s", exc)
        super().stop()

    def init_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = super().init_settings()
        # the XSRF cookie under this server's prefix, as Jupyter Server sets
        # it (Voilà leaves it at "/", shared with every server of the class)
        settings.setdefault("xsrf_cookie_kwargs", {"path": self.base_url})
        return settings

    def init_handlers(self) -> list[Any]:
        base = self.server_url
        dropped = {url_path_join(base, r"/voila/files/(.*)")}
        catch_all = url_path_join(base, r"/(.*)")
        handlers: list[Any] = [(url_path_join(base, "xmailnb/reset"), ResetHandler,
                                {"sandbox": self.sandbox, "reporter": self.reporter}),
                               (url_path_join(base, "xmailnb/progress"), ProgressHandler, {"sandbox": self.sandbox}),
                               (url_path_join(base, "xmailnb/door.js"), DoorScriptHandler),
                               (url_path_join(base, "api"), VersionHandler)]
        for handler in super().init_handlers():
            if handler[0] in dropped:
                continue
            if handler[0] == catch_all:
                # The dashboard at the root only; Voilà's catch-all would
                # answer every other path with a redirect to a file.
                handler = (url_path_join(base, "/()"), DashboardHandler, *handler[2:])
            handlers.append(handler)
        if self.reporter is not None:
            callback = ioloop.PeriodicCallback(self.reporter.tick, POLL_SECONDS * 1000)
            ioloop.IOLoop.current().add_callback(callback.start)
        if self.activity is not None:
            beat = ioloop.PeriodicCallback(self.activity.tick, self.activity.interval * 1000)
            ioloop.IOLoop.current().add_callback(beat.start)
        return handlers


def _argv(extra: list[str]) -> list[str]:
    service_url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return [
        str(dashboard_notebook()),
        "--no-browser",
        f"--port={service_url.port or 8888}",
        f"--Voila.ip={service_url.hostname or '127.0.0.1'}",
        f"--Voila.base_url={prefix}",
        *VOILA_ARGS,
        "--Voila.identity_provider_class=xmailnb.classroom.singleuser.ClassIdentityProvider",
        "--Voila.authorizer_class=xmailnb.classroom.hubauth.HubAuthorizer",
        # One kernel per trainee (see TraineeKernelManager).
        "--VoilaConfiguration.multi_kernel_manager_class=xmailnb.classroom.singleuser.TraineeKernelManager",
        # The page speaks the browser's language (xmailnb.dashboard.page), unless
        # the class fixes one with XMAILNB_PAGE_LANG in the servers' environment.
        "--VoilaConfiguration.http_header_envs=Accept-Language",
        *extra,
    ]


def main(argv: list[str] | None = None) -> None:
    """Run the trainee's server (JupyterHub's spawner calls this)."""
    global _hub_auth
    logging.basicConfig(level=logging.WARNING)
    follow_in_service()  # classroom serve --verbose: the xmailnb records in this server's log
    extra = list(sys.argv[1:] if argv is None else argv)
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    _hub_auth = HubOAuthClient(api_token=token)
    # The kernel inherits this process's environment: the token stays here.
    for name in _SECRET_ENV:
        os.environ.pop(name, None)
    os.environ.pop("MAIL_ROOT", None)
    share = str(share_dir() / "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [share, os.environ.get("JUPYTER_PATH")]))
    mr = resolve(None)  # XMAILNB_DATA_DIR/sandbox-MailRoot, created on first start
    board = os.environ.get("XMAILNB_CLASS_BOARD_URL", "")
    os.environ[CLASS_ENV] = "1"
    app = ClassVoila()
    app.sandbox = Sandbox(mr, lambda: _in_use(app))
    app.reporter = Reporter(app.sandbox, board, token) if board and token else None
    activity_url = os.environ.get("JUPYTERHUB_ACTIVITY_URL", "")
    if activity_url and token:
        interval = float(os.environ.get("JUPYTERHUB_ACTIVITY_INTERVAL") or ACTIVITY_SECONDS)
        app.activity = Activity(app, activity_url, token, max(5.0, interval))
    app.tornado_settings = {"websocket_max_message_size": MAX_MESSAGE_BYTES}
    app.initialize(_argv(extra))
    app.start()


if __name__ == "__main__":  # pragma: no cover
    # Run the module's own copy (not __main__'s): the classes that the
    # configuration names by import path must see the same globals.
    from xmailnb.classroom.singleuser import main as _main

    _main()

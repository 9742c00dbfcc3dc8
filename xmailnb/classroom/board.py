"""The class board: a JupyterHub service only the trainer can open.

One row per trainee (``xm-trainee-NAME``), one cell per workbook step
(``xm-step-<step>`` with ``xm-ok``/``xm-warn``/``xm-error``/``xm-pending``
from :func:`xmailnb.checks.progress.step_progress`, as each trainee's server
reported it), the time of their last change, their open problems, a reset
button (``xm-reset-NAME``, confirmed with ``xm-reset-confirm``) and a link to
a read-only view of their workbook.  The page asks for the state once a
second, so a change shows within a couple of seconds.

Access:

* Pages and the page's API: JupyterHub OAuth; the hub lets through only
  tokens with ``access:services!service=class-board`` (the trainer's role).
  Anyone else gets 403.
* ``POST api/report``: a trainee's server, with its own JupyterHub token;
  the hub says whose it is, and the token must carry the report scope for
  that user.  A report is only ever about the token's own user.
* Reset: the board posts to the trainee's server (through the hub's proxy)
  with the service's own token; the server checks with the hub that it
  comes from this service.  A server that is not running gets the reset
  with the answer to its next report.

Nothing here reads a trainee's folder: what the board knows, it was told
over HTTP, so the board works the same when servers run in containers or
on other machines.  The last reports are kept in ``hub/board-state.json``
so a restarted hub still shows where everyone was.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web

from .. import boundedjson
from ..files import read_regular, write_atomic
from ..i18n import LANGUAGES, text
from ..checks.progress import STEPS
from . import roster
from .hubconfig import REPORT_SCOPE
from .report import BOARD_CLASSES

__all__ = ["Board", "make_app", "main"]

log = logging.getLogger(__name__)

ONLINE_SECONDS = 45.0
MAX_REPORT_BYTES = 2 * 1024 * 1024
_STATES = frozenset(BOARD_CLASSES)
_STATUSES = frozenset({"ok", "info", "warn", "error"})
_ICONS = {"done": "\u2714", "attention": "\u26a0", "broken": "\u2716", "todo": "\u00b7"}


def _now() -> float:
    return time.time()


class Board:
    """What the board knows: the latest report of each trainee, and the
    resets not delivered yet."""

    def __init__(self, class_dir: Path) -> None:
        self.class_dir = class_dir
        self.reports: dict[str, dict[str, Any]] = {}
        self.received: dict[str, float] = {}
        self.pending: dict[str, int] = {}
        self._load()

    @property
    def _file(self) -> Path:
        return self.class_dir / "hub" / "board-state.json"

    def _load(self) -> None:
        try:
            doc = boundedjson.loads(read_regular(self._file, 16 * 1024 * 1024), name=str(self._file), max_bytes=16 * 1024 * 1024)
            self.reports = {k: v for k, v in doc.get("reports", {}).items() if isinstance(v, dict)}
            self.pending = {k: int(v) for k, v in doc.get("pending", {}).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            pass

    def _save(self) -> None:
        try:
            write_atomic(self._file, json.dumps({"reports": self.reports, "pending": self.pending}).encode(), 0o600)
        except OSError as exc:
            log.warning("cannot keep the board's state: %s", exc)

    def room(self) -> roster.Classroom:
        return roster.load(self.class_dir)

    def take_report(self, name: str, payload: dict[str, Any]) -> bool:
        """Record *name*'s report; True when a reset waits for them."""
        clean = _clean(payload)
        changed = self.reports.get(name) != clean
        self.reports[name] = clean
        self.received[name] = _now()
        waiting = self.pending.get(name)
        if waiting is not None and clean["generation"] > waiting:
            del self.pending[name]
            changed = True
        if changed:
            self._save()
        return name in self.pending

    def ask_reset(self, name: str) -> None:
        report = self.reports.get(name) or {}
        self.pending[name] = int(report.get("generation") or 0)
        self._save()

    def state(self) -> dict[str, Any]:
        """The JSON the page draws: every trainee of the roster, in order."""
        rows = []
        now = _now()
        for account in self.room().trainees:
            report = self.reports.get(account.name)
            received = self.received.get(account.name)
            rows.append({
                "name": account.name,
                "online": received is not None and now - received < ONLINE_SECONDS,
                "reported": report is not None,
                "steps": (report or {}).get("steps") or {str(s): "todo" for s in STEPS},
                "last_change": (report or {}).get("last_change"),
                "problems": (report or {}).get("problems") or [],
                "generation": (report or {}).get("generation", 0),
                "reset_pending": account.name in self.pending,
            })
        return {"trainees": rows, "steps": [str(s) for s in STEPS]}


def _clean(payload: Any) -> dict[str, Any]:
    """Keep only what the board shows, of the expected types (a report
    comes from a trainee's process: trust its shape no more than needed)."""
    if not isinstance(payload, dict):
        raise ValueError("report")
    steps_in = payload.get("steps") or {}
    steps = {str(s): (steps_in.get(str(s)) if steps_in.get(str(s)) in _STATES else "todo") for s in STEPS}

    def findings(items: Any) -> list[dict[str, Any]]:
        out = []
        for f in (items if isinstance(items, list) else [])[:200]:
            if not isinstance(f, dict):
                continue
            def texts(v: Any) -> dict[str, str] | None:
                return {lang: str(v.get(lang, ""))[:2000] for lang in LANGUAGES} if isinstance(v, dict) else None
            out.append({"check": str(f.get("check", ""))[:100],
                        "status": f.get("status") if f.get("status") in _STATUSES else "info",
                        "message": texts(f.get("message")) or {lang: "" for lang in LANGUAGES},
                        "fix": texts(f.get("fix"))})
        return out

    raw_history = payload.get("history")
    history = [{"time": str(h.get("time", ""))[:40], "action": str(h.get("action", ""))[:40],
                "result": str(h.get("result", ""))[:40]}
               for h in (raw_history if isinstance(raw_history, list) else [])[:50] if isinstance(h, dict)]
    last = payload.get("last_change")
    generation = payload.get("generation")
    return {"steps": steps, "last_change": str(last)[:40] if last else None,
            "problems": findings(payload.get("problems")), "findings": findings(payload.get("findings")),
            "history": history,
            "generation": generation if isinstance(generation, int) and not isinstance(generation, bool) else 0}


# -- handlers ----------------------------------------------------------------------------

def _lang(handler: web.RequestHandler, default: str) -> str:
    asked = handler.get_argument("lang", "")
    if asked in LANGUAGES:
        return asked
    for part in handler.request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return default


class _Page(HubOAuthenticated, web.RequestHandler):
    """A page or API call of the trainer (HubOAuth, board access scope)."""

    @property
    def board(self) -> Board:
        return self.settings["board"]

    def t(self, key: str, **params: Any) -> str:
        return text(key, self.lang, **params)

    def prepare(self) -> None:
        self.lang = _lang(self, self.board.room().lang)
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")


_STYLE = """
body { font-family: "Noto Sans CJK JP", "Noto Sans", sans-serif; margin: 1.5em; color: #212121; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
.xm-sub { color: #555; margin-bottom: 1em; }
table.xm-class-board { border-collapse: collapse; }
.xm-class-board th, .xm-class-board td { border: 1px solid #ddd; padding: 6px 10px; text-align: center; }
.xm-class-board td.xm-problems { text-align: left; max-width: 28em; font-size: 90%; }
.xm-class-board th.xm-name { text-align: left; }
td.xm-ok { background: #e8f5e9; color: #2e7d32; }
td.xm-warn { background: #fff8e1; color: #ef6c00; }
td.xm-error { background: #ffebee; color: #c62828; }
td.xm-pending { color: #9e9e9e; }
.xm-offline { color: #9e9e9e; font-size: 85%; }
.xm-online { color: #2e7d32; font-size: 85%; }
.xm-dialog { position: fixed; top: 30%; left: 50%; transform: translateX(-50%); background: #fff;
  border: 2px solid #c62828; padding: 1em 1.5em; box-shadow: 0 4px 16px rgba(0,0,0,.3); max-width: 32em; }
.xm-board-message { margin: .8em 0; min-height: 1.2em; }
.xm-board-message.xm-ok { color: #2e7d32; } .xm-board-message.xm-error { color: #c62828; }
.xm-lang a { margin-left: .6em; }
.xm-finding { padding: 4px 8px; margin: 2px 0; border-left: 4px solid #9e9e9e; }
.xm-finding.xm-ok { border-color: #2e7d32; } .xm-finding.xm-info { border-color: #1565c0; }
.xm-finding.xm-warn { border-color: #ef6c00; background: #fff8e1; }
.xm-finding.xm-error { border-color: #c62828; background: #ffebee; }
.xm-fix { color: #555; font-size: 90%; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


class BoardPage(_Page):
    @web.authenticated
    def get(self) -> None:
        t = self.t
        labels: dict[str, Any] = {
            "steps": {str(s): f"{i}. {t(f'ui.nav.{s}')}" for i, s in enumerate(STEPS, 1)},
            "states": {s: t(f"classroom.board.state.{s}") for s in BOARD_CLASSES},
            "icons": _ICONS,
            "classes": BOARD_CLASSES,
            "online": t("classroom.board.online"), "offline": t("classroom.board.offline"),
            "never": t("classroom.board.never"), "reset": t("classroom.board.reset"),
            "view": t("classroom.board.view"), "none": t("classroom.board.no_problems"),
            "pending": t("classroom.board.reset_pending"),
            "confirm": t("classroom.board.confirm", name="{name}"),
            "done": t("classroom.board.reset_done", name="{name}"),
            "queued": t("classroom.board.reset_queued", name="{name}"),
            "failed": t("classroom.board.reset_failed", name="{name}"),
            "more": t("classroom.board.more_problems", count="{count}"),
            "lang": self.lang,
        }
        other = "en" if self.lang == "ja" else "ja"
        head = "".join(f'<th class="xm-col-{s}">{_e(labels["steps"][str(s)])}</th>' for s in STEPS)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(f"""<!DOCTYPE html>
<html lang="{self.lang}"><head><meta charset="utf-8"><title>{_e(t("classroom.board.title"))}</title>
<meta name="xsrf" content="{_e(self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token)}">
<link rel="icon" href="data:,"><style>{_STYLE}</style></head>
<body><div class="xm-lang" style="float:right"><a class="xm-lang-{other}" href="?lang={other}">{_e(text(f"ui.lang.{other}", other))}</a></div>
<h1>{_e(t("classroom.board.title"))}</h1>
<div class="xm-sub">{_e(t("classroom.board.intro"))}</div>
<div class="xm-board-message" role="status"></div>
<table class="xm-class-board"><thead><tr><th class="xm-name">{_e(t("classroom.board.trainee"))}</th>{head}
<th>{_e(t("classroom.board.last_change"))}</th><th>{_e(t("classroom.board.problems"))}</th><th></th></tr></thead>
<tbody></tbody></table>
<div class="xm-dialog xm-reset-dialog" hidden><p class="xm-reset-question"></p>
<button class="xm-reset-confirm">{_e(t("classroom.board.reset_yes"))}</button>
<button class="xm-reset-cancel">{_e(t("classroom.board.reset_no"))}</button></div>
<script>const XM = {json.dumps(labels, ensure_ascii=False)};</script>
<script>{_SCRIPT}</script></body></html>""")


_SCRIPT = r"""
(function () {
  const body = document.querySelector('.xm-class-board tbody');
  const message = document.querySelector('.xm-board-message');
  const dialog = document.querySelector('.xm-reset-dialog');
  const xsrf = document.querySelector('meta[name=xsrf]').content;
  let asking = null;
  const esc = s => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
  function when(iso) {
    if (!iso) return XM.never;
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString(XM.lang === 'ja' ? 'ja-JP' : 'en-GB');
  }
  function row(t) {
    const cells = Object.keys(XM.steps).map(s => {
      const st = t.steps[s] || 'todo';
      return `<td class="xm-step xm-step-${s} ${XM.classes[st]}" title="${esc(XM.steps[s] + ': ' + XM.states[st])}">${XM.icons[st]}</td>`;
    }).join('');
    const probs = t.problems.slice(0, 3).map(p => `<div class="xm-problem xm-${esc(p.status)}">${esc(p.message[XM.lang] || '')}</div>`).join('')
      + (t.problems.length > 3 ? `<div>${esc(XM.more.replace('{count}', t.problems.length - 3))}</div>` : '')
      || `<span class="xm-pending">${esc(XM.none)}</span>`;
    const status = t.online ? `<span class="xm-online">${esc(XM.online)}</span>` : `<span class="xm-offline">${esc(XM.offline)}</span>`;
    const pending = t.reset_pending ? `<div class="xm-reset-pending">${esc(XM.pending)}</div>` : '';
    return `<tr class="xm-trainee xm-trainee-${t.name}" data-name="${t.name}">`
      + `<th class="xm-name"><a class="xm-view xm-view-${t.name}" href="trainee/${t.name}?lang=${XM.lang}" target="_blank">${esc(t.name)}</a> ${status}</th>`
      + cells + `<td class="xm-last-change">${esc(when(t.last_change))}</td><td class="xm-problems">${probs}</td>`
      + `<td><button class="xm-reset xm-reset-${t.name}" data-name="${t.name}">${esc(XM.reset)}</button>${pending}</td></tr>`;
  }
  async function refresh() {
    try {
      // JupyterHub wants the XSRF token on every cookie-authenticated fetch, GET included.
      const r = await fetch('api/state', {credentials: 'same-origin', cache: 'no-store', headers: {'X-XSRFToken': xsrf}});
      if (r.ok) { const s = await r.json(); body.innerHTML = s.trainees.map(row).join(''); }
    } catch (e) { /* the hub restarts: try again */ }
  }
  function say(cls, textValue) { message.className = 'xm-board-message ' + cls; message.textContent = textValue; }
  body.addEventListener('click', ev => {
    const b = ev.target.closest('button.xm-reset');
    if (!b) return;
    asking = b.dataset.name;
    dialog.querySelector('.xm-reset-question').textContent = XM.confirm.replace('{name}', asking);
    dialog.hidden = false;
  });
  dialog.querySelector('.xm-reset-cancel').addEventListener('click', () => { dialog.hidden = true; asking = null; });
  dialog.querySelector('.xm-reset-confirm').addEventListener('click', async () => {
    const name = asking; dialog.hidden = true; asking = null;
    if (!name) return;
    try {
      const r = await fetch('api/reset/' + encodeURIComponent(name), {method: 'POST', credentials: 'same-origin',
        headers: {'X-XSRFToken': xsrf}});
      const s = r.ok ? await r.json() : {};
      if (s.done) say('xm-ok', XM.done.replace('{name}', name));
      else if (s.pending) say('xm-ok', XM.queued.replace('{name}', name));
      else say('xm-error', XM.failed.replace('{name}', name));
    } catch (e) { say('xm-error', XM.failed.replace('{name}', name)); }
    refresh();
  });
  refresh();
  setInterval(refresh, 1000);
})();
"""


class StateHandler(_Page):
    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.board.state()))


class TraineePage(_Page):
    """The trainee's workbook as it is now, read-only: steps, every check
    with its fix, and their recent history."""

    @web.authenticated
    def get(self, name: str) -> None:
        room = self.board.room()
        account = room.account(name)
        if account is None or account.role != "trainee":
            raise web.HTTPError(404)
        t, lang = self.t, self.lang
        report = self.board.reports.get(name)
        rows = []
        if report is None:
            rows.append(f'<p class="xm-pending">{_e(t("classroom.board.never_reported", name=name))}</p>')
        else:
            steps = "".join(
                f'<td class="xm-step xm-step-{s} {BOARD_CLASSES[report["steps"][str(s)]]}">'
                f'{_e(t(f"ui.nav.{s}"))}<br>{_ICONS[report["steps"][str(s)]]} '
                f'{_e(t("classroom.board.state." + report["steps"][str(s)]))}</td>' for s in STEPS)
            rows.append(f'<table class="xm-class-board xm-trainee-{name}"><tr>{steps}</tr></table>')
            rows.append(f'<h2>{_e(t("classroom.board.findings"))}</h2>')
            order = {"error": 0, "warn": 1, "info": 2, "ok": 3}
            for f in sorted(report["findings"], key=lambda f: order.get(f["status"], 4)):
                fix = f'<div class="xm-fix">{_e(f["fix"][lang])}</div>' if f.get("fix") and f["status"] != "ok" else ""
                rows.append(f'<div class="xm-finding xm-{f["status"]} xm-check-{_e(f["check"].replace(".", "-"))}">'
                            f'<b>{_e(t("ui.icon." + f["status"]))}</b> {_e(f["message"][lang])}{fix}</div>')
            rows.append(f'<h2>{_e(t("classroom.board.history"))}</h2><ul class="xm-history">')
            for h in reversed(report["history"]):
                rows.append(f'<li>{_e(h["time"][:19].replace("T", " "))} {_e(h["action"])} ({_e(h["result"])})</li>')
            rows.append("</ul>")
        received = self.board.received.get(name)
        seen = (dt.datetime.fromtimestamp(received).astimezone().strftime("%Y-%m-%d %H:%M:%S")
                if received else t("classroom.board.never"))
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="3"><title>{_e(t("classroom.board.view_title", name=name))}</title>
<link rel="icon" href="data:,"><style>{_STYLE}</style></head><body class="xm-trainee-view">
<h1>{_e(t("classroom.board.view_title", name=name))}</h1>
<div class="xm-sub">{_e(t("classroom.board.view_intro", seen=seen))}</div>
{''.join(rows)}</body></html>""")


class ResetHandler(_Page):
    @web.authenticated
    async def post(self, name: str) -> None:
        account = self.board.room().account(name)
        if account is None or account.role != "trainee":
            raise web.HTTPError(404)
        hub = self.settings["hub_url"]
        url = url_path_join(hub, "user", name, "xmailnb/reset")
        client = httpclient.AsyncHTTPClient()
        done = False
        try:
            response = await client.fetch(url, method="POST", body=b"", raise_error=False, follow_redirects=False,
                                          headers={"Authorization": f"token {self.settings['api_token']}"},
                                          request_timeout=60)
            done = response.code == 200
            if not done:
                log.info("trainee %s's server did not take the reset (HTTP %s): queued", name, response.code)
        except Exception as exc:
            log.info("trainee %s's server cannot be reached (%s): reset queued", name, exc)
        if done:
            self.board.pending.pop(name, None)
        else:
            self.board.ask_reset(name)
        log.warning("the trainer reset %s's sandbox%s", name, "" if done else " (queued)")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"done": done, "pending": not done}))


class ReportHandler(web.RequestHandler):
    """``POST api/report`` from a trainee's server (token only, never cookies)."""

    def check_xsrf_cookie(self) -> None:
        # Only an Authorization header is accepted here, which a browser
        # never sends by itself across sites: no cross-site request to fear.
        return

    async def post(self) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            raise web.HTTPError(403)
        hub_auth: HubOAuth = self.settings["hub_auth"]
        model = await hub_auth.user_for_token(token.strip(), sync=False)
        if not model or model.get("kind", "user") != "user":
            raise web.HTTPError(403)
        name = model["name"]
        scopes = set(model.get("scopes") or ())
        if not ({REPORT_SCOPE, f"{REPORT_SCOPE}!user={name}"} & scopes):
            raise web.HTTPError(403)
        board: Board = self.settings["board"]
        account = board.room().account(name)
        if account is None or account.role != "trainee":
            raise web.HTTPError(403)
        if len(self.request.body) > MAX_REPORT_BYTES:
            raise web.HTTPError(413)
        try:
            payload = boundedjson.loads(self.request.body, name="api/report", max_bytes=MAX_REPORT_BYTES)
            reset = board.take_report(name, payload)
        except (ValueError, TypeError) as exc:
            raise web.HTTPError(400, reason=f"report refused: {exc}"[:200].replace("\r", " ").replace("\n", " ")) from None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"reset": reset}))


def make_app(board: Board, *, prefix: str, hub_auth: HubOAuth, hub_url: str, api_token: str,
             cookie_secret: bytes) -> web.Application:
    return web.Application([
        (prefix, BoardPage),
        (url_path_join(prefix, "api/state"), StateHandler),
        (url_path_join(prefix, r"api/reset/([a-z][a-z0-9_-]{0,31})"), ResetHandler),
        (url_path_join(prefix, "api/report"), ReportHandler),
        (url_path_join(prefix, r"trainee/([a-z][a-z0-9_-]{0,31})"), TraineePage),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], board=board, hub_auth=hub_auth, hub_url=hub_url, api_token=api_token, cookie_secret=cookie_secret,
        xsrf_cookies=True, login_url=hub_auth.login_url, max_body_size=MAX_REPORT_BYTES + 1024)


def main() -> None:
    """Run the board (JupyterHub starts it as a managed service)."""
    logging.basicConfig(level=logging.WARNING, format="[class-board] %(message)s")
    # jupyterhub's XSRF helper warns about every plain GET: not news.
    logging.getLogger("tornado.application").setLevel(logging.ERROR)
    hub_auth = HubOAuth(cache_max_age=60)
    board = Board(Path(os.environ["XMAILNB_CLASS_DIR"]))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/class-board/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8003"))
    app = make_app(board, prefix=prefix, hub_auth=hub_auth, hub_url=os.environ["XMAILNB_CLASS_HUB_URL"],
                   api_token=os.environ["JUPYTERHUB_API_TOKEN"], cookie_secret=os.urandom(32))
    app.listen(url.port or 8003, url.hostname or "127.0.0.1")
    loop = ioloop.IOLoop.current()
    # JupyterHub starts services with SIGINT ignored, and stops them with it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: loop.add_callback_from_signal(loop.stop))
    loop.start()


if __name__ == "__main__":  # pragma: no cover
    # Run the module's own copy (not __main__'s): the classes that the
    # configuration names by import path must see the same globals.
    from xmailnb.classroom.board import main as _main

    _main()

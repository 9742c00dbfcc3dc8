"""Every JSON the product reads is read with limits (size and depth).

``[`` repeated 100,000 times made :func:`json.loads` recurse until a
RecursionError: an internal error on the command line, a 500 with a
traceback on the class board.  Each reader now refuses it (naming the file
and the limit) or treats it as damaged, as it does any unreadable document.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest

from aio import run_async
from helpers import run
from xmailnb import boundedjson
from xmailnb.i18n import Msg
from xmailnb.mailroot import store as storemod
from xmailnb.mailroot.layout import MailRoot

BOMB = b"[" * 100000


def test_bomb_refused_without_recursion_in_both_languages():
    started = time.perf_counter()
    with pytest.raises(boundedjson.JsonLimitError) as caught:
        boundedjson.loads(BOMB, name="sslconf/x.json")
    assert time.perf_counter() - started < 2
    exc = caught.value
    assert (exc.name, exc.limit) == ("sslconf/x.json", boundedjson.MAX_DEPTH)
    assert exc.msg.render("en") == ("sslconf/x.json was not read: its brackets nest more than 32 levels deep, "
                                    "far more than the workbook ever writes there.")
    assert "sslconf/x.json" in exc.msg.render("ja") and "32 段" in exc.msg.render("ja")


def test_limits_are_exact_and_strings_do_not_count():
    at_limit = "[" * 32 + "]" * 32
    assert boundedjson.loads(at_limit, name="x") is not None
    with pytest.raises(boundedjson.JsonLimitError):
        boundedjson.loads("[" + at_limit + "]", name="x")
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    text = json.dumps({"a": "[" * 1000 + '"\\' + "{" * 1000})
    assert boundedjson.nesting_depth(text) == 1
    assert boundedjson.loads(text, name="x")["a"].startswith("[[[")
    with pytest.raises(boundedjson.JsonLimitError) as caught:
        boundedjson.loads(b" " * 11, name="small.json", max_bytes=10)
    assert caught.value.msg == Msg.of("json.too_large", name="small.json", limit=10)
    with pytest.raises(ValueError):
        boundedjson.loads(b"[1,", name="x")


def test_a_large_flat_document_is_measured_quickly():
    doc = json.dumps([{"a": [1, 2, {"b": "]" * 10}]} for _ in range(20000)]).encode()
    started = time.perf_counter()
    assert len(boundedjson.loads(doc, name="x", max_bytes=len(doc))) == 20000
    assert time.perf_counter() - started < 5


def _bomb(mailroot: Path, rel: str) -> None:
    path = mailroot / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(BOMB)


def test_acme_settings(mailroot):
    _bomb(mailroot, "sslconf/acme/settings.json")
    # One finding among the others: the rest of the diagnosis is still shown.
    r = run("diagnose", "--mailroot", str(mailroot), "--lang", "en", "--json")
    assert r.code == 1
    by_check = {f["check"]: f for f in r.json["findings"]}
    assert by_check["acme.renewal"]["status"] == "error"
    assert by_check["acme.renewal"]["message"].startswith(
        "sslconf/acme/settings.json was not read: its brackets nest more than 32 levels deep")
    assert "cert.present" in by_check
    r = run("diagnose", "--mailroot", str(mailroot), "--lang", "ja")
    assert "sslconf/acme/settings.json は読み込みませんでした" in r.out


def test_workbook_settings(mailroot):
    (mailroot / "sslconf" / "xmailnb.json").write_bytes(b"[" * 60000)
    r = run("notice", "--mailroot", str(mailroot), "--lang", "en")
    assert r.code == 1
    assert "sslconf/xmailnb.json was not read: its brackets nest more than 32 levels deep" in r.err
    _bomb(mailroot, "sslconf/xmailnb.json")  # larger than the file's 64 KB limit
    r = run("notice", "--mailroot", str(mailroot), "--lang", "en")
    assert r.code == 1
    assert "sslconf/xmailnb.json was not read: it is larger than 65536 bytes" in r.err


def test_archive_manifest(mailroot, frozen_now):
    mr = MailRoot(mailroot, is_sandbox=True)
    store = storemod.Store(mr)
    first = store.apply("settings", {"server.tab": b"# one\n"})
    second = store.apply("settings", {"server.tab": b"# two\n"})
    (mr.archive_dir / second.id / "manifest.json").write_bytes(BOMB)
    r = run("history", "--mailroot", str(mailroot), "--json")
    assert r.code == 0
    assert [e["id"] for e in r.json] == [first.id]  # the damaged entry is left out
    r = run("rollback", "--mailroot", str(mailroot), "--to", second.id, "--lang", "en")
    assert r.code == 1
    assert (mailroot / "server.tab").read_bytes() == b"# two\n"
    # The next change still comes after every one before, the damaged one included.
    assert store.apply("settings", {"server.tab": b"# three\n"}).seq == 3


def test_journal(mailroot):
    journal = mailroot / "sslconf" / ".xmailnb-journal.json"
    journal.write_bytes(BOMB)
    r = run("settings", "--mailroot", str(mailroot), "--set", "SSLUseCertsFile=1", "--lang", "en")
    assert r.code == 0, r.err
    assert "A change record that could not be used was found and moved to sslconf/archive/set-aside/" in r.err
    assert not journal.exists()
    assert b'"SSLUseCertsFile"\t"1"' in (mailroot / "server.tab").read_bytes()


def test_checklist_is_started_afresh(mailroot):
    from xmailnb.flows import actions

    _bomb(mailroot, "sslconf/checklist.json")
    mr = MailRoot(mailroot, is_sandbox=True)
    assert run("diagnose", "--mailroot", str(mailroot)).code in (0, 1)
    actions.tick_checklist(mr, "send", True)
    assert json.loads((mailroot / "sslconf" / "checklist.json").read_bytes())["ticked"] == ["send"]
    entry = storemod.Store(mr).history()[0]
    assert storemod.Store(mr).archived_bytes(entry)["sslconf/checklist.json"] == BOMB  # nothing lost


def test_sandbox_generation_and_audit_log(mailroot):
    from xmailnb.mailroot.sandbox import Generation, generation

    (mailroot / "sslconf" / "xmailnb-generation.json").write_bytes(b"[" * 4000)
    assert generation(mailroot) == Generation()
    mr = MailRoot(mailroot, is_sandbox=True)
    store = storemod.Store(mr)
    store.apply("settings", {"server.tab": b"# one\n"})
    with open(mailroot / "sslconf" / "audit.log", "ab") as fh:
        fh.write(BOMB + b"\n")
    store.apply("settings", {"server.tab": b"# two\n"})
    assert [r.result for r in store.audit_records()] == ["ok", "ok"]


def _class(tmp_path: Path) -> Path:
    assert run("classroom", "init", str(tmp_path / "class"), "--trainer", "sato", "--trainees", "alice").code == 0
    return tmp_path / "class"


def test_roster(tmp_path):
    from xmailnb.classroom import roster
    from xmailnb.errors import UsageError

    root = _class(tmp_path)
    (root / "class.json").write_bytes(BOMB)
    with pytest.raises(UsageError) as caught:
        roster.load(root)
    assert "class.json was not read: its brackets nest more than 32 levels deep" in caught.value.render("en")


def test_board_state_and_report(tmp_path):
    from tornado.httpclient import AsyncHTTPClient

    from xmailnb.classroom.board import Board, make_app

    root = _class(tmp_path)
    (root / "hub").mkdir(exist_ok=True)
    (root / "hub" / "board-state.json").write_bytes(BOMB)

    class Hub:
        login_url = "/hub/login"

        async def user_for_token(self, token, sync=True, **kw):
            return {"name": "alice", "kind": "user", "scopes": ["custom:xmailnb:report!user=alice"]}

    async def go():
        board = Board(root)  # the damaged state is not used: an empty board
        assert board.reports == {}
        app = make_app(board, prefix="/services/class-board/", hub_auth=Hub(), hub_url="http://127.0.0.1:1",
                       api_token="svc", cookie_secret=b"x" * 32)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = app.listen(port, "127.0.0.1")
        try:
            return await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/services/class-board/api/report",
                                                 method="POST", body=BOMB, headers={"Authorization": "token t"},
                                                 raise_error=False)
        finally:
            server.stop()

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        response = pool.submit(asyncio.run, go()).result()
    # The board takes nothing from a report's body (it reads the trainee's
    # progress from their server, through boundedjson): a bomb is ignored.
    assert response.code == 200
    assert b"Traceback" not in (response.body or b"")


def test_a_trainee_server_answering_a_bomb_leaves_the_row_as_it_was(tmp_path):
    """What the board does read (a trainee's progress from their server):
    a bomb counts as a server that did not answer, nothing else changes."""
    from tornado import web

    from xmailnb.classroom.board import Board, Puller

    root = _class(tmp_path)

    class Bomb(web.RequestHandler):
        def post(self, name: str) -> None:
            self.finish(BOMB)

    async def go():
        board = Board(root)
        board.open["alice"] = True
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = web.Application([(r"/user/([^/]+)/xmailnb/progress", Bomb)]).listen(port, "127.0.0.1")
        try:
            ok = await Puller(board, f"http://127.0.0.1:{port}/", "svc").pull("alice")
        finally:
            server.stop()
        return ok, board

    ok, board = run_async(go())
    assert ok is False
    assert board.open["alice"] is False and "alice" not in board.reports

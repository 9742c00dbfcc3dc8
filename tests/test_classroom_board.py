"""The class board without a hub: who is stuck, the summary, and a board a
trainee cannot write (issue 19, sections 1, 3 and 5).

The trainee's page is the real wizard (headless) with its class controls;
their server is the real ``xmailnb/progress`` route of
:mod:`xmailnb.classroom.singleuser`; the board is the real tornado
application.  Only JupyterHub is replaced, by a table saying whose each
token is (what the hub's ``/api/user`` answers).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
from tornado import httpclient, web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from aio import run_async
from helpers import sandbox_copy
from xmailnb.classroom import board as boardmod
from xmailnb.classroom import admin, roster, singleuser
from xmailnb.classroom.report import read_inbox, read_page
from xmailnb.flows import actions
from xmailnb.pki import csr as csrmod
from xmailnb.mailroot.resolve import resolve
from xmailnb.mailroot.sandbox import generation
from xmailnb.ui import Wizard
from xmailnb.ui.install import upload_value

TOKENS = {
    "server-alice": {"kind": "user", "name": "alice", "scopes": ["custom:xmailnb:report!user=alice"]},
    # What /hub/token gives alice: the hub cannot tell it from her server's token.
    "minted-alice": {"kind": "user", "name": "alice", "scopes": ["custom:xmailnb:report!user=alice"]},
    "board": {"kind": "service", "name": "class-board", "scopes": []},
}


class FakeHubAuth:
    login_url = "/hub/login"

    async def user_for_token(self, token, use_cache=True, session_id="", *, sync=False):
        return TOKENS.get(token)


@pytest.fixture
def klass(tmp_path, monkeypatch):
    room, _ = roster.init_class(tmp_path / "class", "sato", ["alice", "bob"])
    for name in ("alice", "bob"):
        if not (room.data_dir(name) / "sandbox-MailRoot").is_dir():
            sandbox_copy(room.data_dir(name) / "sandbox-MailRoot")
    monkeypatch.setenv("XMAILNB_CLASSROOM", "1")
    return room


def _page(room, name: str) -> Wizard:
    return Wizard(resolve(room.data_dir(name) / "sandbox-MailRoot"), lang="en", watch_interval=None)


def _sandbox(room, name: str) -> singleuser.Sandbox:
    return singleuser.Sandbox(resolve(room.data_dir(name) / "sandbox-MailRoot"), lambda: True)


def _read(board: boardmod.Board, room, name: str) -> dict:
    """What the board's read of *name*'s server brings back (no HTTP)."""
    asked = board.asking(name)
    board.take_answer(name, run_async(_sandbox(room, name).answer(asked)), asked_reset=asked["reset"])
    return board.state()["trainees"][[a.name for a in room.trainees].index(name)]


def _page_noticed(check, shown) -> bool:
    """The page noticed what the server wrote: its own look (*check*) found
    it, or its watch thread (a poll a second) already had, and *shown* tells
    from what the trainee sees.  The server reads the progress in a child
    process, so the thread often gets there first."""
    check()
    deadline = time.monotonic() + 10
    while not shown() and time.monotonic() < deadline:
        time.sleep(0.1)
    return bool(shown())


def _refuse_an_upload(wizard: Wizard) -> None:
    wizard.show("install")
    wizard.steps["install"].uploads["cert"].value = upload_value(b"hello", "notes.txt")


def test_a_refused_attempt_shows_with_its_reason_until_progress_is_made(klass):
    board = boardmod.Board(klass.path)
    alice = _page(klass, "alice")
    row = _read(board, klass, "alice")
    assert (row["refusals"], row["stuck"], row["viewing"]) == (0, [], "diagnose")

    _refuse_an_upload(alice)
    _refuse_an_upload(alice)  # the same refusal twice counts twice
    row = _read(board, klass, "alice")
    assert row["refusals"] == 2
    assert "notes.txt" in row["last_refusal"]["reason"]["en"]
    assert row["stuck"] == ["refused"]
    assert row["viewing"] == "install"
    assert board.state()["summary"]["stuck"] == 1

    # Progress after the refusal: no longer stuck (the count stays).
    _make_csr(klass)
    row = _read(board, klass, "alice")
    assert row["refusals"] == 2 and row["stuck"] == []


def _make_csr(room) -> None:
    request = csrmod.request_from_values({"country": "JP", "state": "Tokyo", "locality": "Minato-ku",
                                          "org": "Class", "cn": "mail.example.jp"})
    actions.create_csr(resolve(room.data_dir("alice") / "sandbox-MailRoot"), request)


def test_a_raised_hand_shows_until_the_trainer_lowers_it(klass):
    board = boardmod.Board(klass.path)
    alice = _page(klass, "alice")
    controls = alice.class_controls
    assert controls is not None and "xm-raise-hand" in controls.raise_hand._dom_classes
    controls.raise_hand.click()
    assert controls.raise_hand.disabled and controls.hand_note.value
    row = _read(board, klass, "alice")
    assert row["hand"] is True and row["stuck"] == ["hand"]
    assert board.state()["summary"]["hands"] == 1

    board.clear_hand("alice")
    _read(board, klass, "alice")  # hands the lowered hand to the server, which writes the inbox
    assert read_inbox(klass.data_dir("alice"))["hand_cleared"] == board.hand_cleared["alice"]
    assert _page_noticed(controls.check, lambda: not controls.raise_hand.disabled and controls.hand_note.value == "")
    row = _read(board, klass, "alice")
    assert row["hand"] is False and row["stuck"] == []

    # The trainer's export counts each time the hand went up.
    controls.raise_hand.click()
    _read(board, klass, "alice")
    record = {r.account.name: r for r in admin.trainee_records(klass)}["alice"]
    assert record.hand_raises == 2 and record.refusals == 0


def test_a_message_reaches_the_class_or_one_trainee(klass):
    board = boardmod.Board(klass.path)
    alice, bob = _page(klass, "alice"), _page(klass, "bob")
    board.add_message("", "Break until 14:00")
    board.add_message("bob", "Look at step 2 again")
    for name in ("alice", "bob"):
        _read(board, klass, name)
    for page in (alice, bob):
        page.class_controls.check()
    assert "Break until 14:00" in alice.class_controls.message.value
    assert "Look at step 2 again" in bob.class_controls.message.value
    assert "step 2" not in alice.class_controls.message.value
    assert "xm-class-message" in alice.class_controls.message._dom_classes


def test_no_progress_for_the_trainers_time_counts_as_stuck(klass, monkeypatch):
    board = boardmod.Board(klass.path)
    _page(klass, "alice")
    start = boardmod._now()
    _read(board, klass, "alice")
    board.set_stuck_minutes(5)
    monkeypatch.setattr(boardmod, "_now", lambda: start + 4 * 60)
    assert board.state()["trainees"][0]["stuck"] == []
    # Still online (read again), six minutes without progress.
    monkeypatch.setattr(boardmod, "_now", lambda: start + 6 * 60)
    row = _read(board, klass, "alice")
    assert row["stuck"] == ["idle"] and 50 <= row["stuck_seconds"] <= 70


def test_the_summary_counts_each_step_the_finished_and_where_most_are_stuck(klass):
    board = boardmod.Board(klass.path)
    todo = {s: "todo" for s in boardmod._STEP_NAMES}
    finished = {s: "done" for s in boardmod._STEP_NAMES}
    board.take_report("alice", {"steps": {**todo, "diagnose": "done"}})
    board.take_report("bob", {"steps": finished})
    board.pages["alice"] = {"hand": "2020-01-01T00:00:00+00:00", "refusals": []}
    summary = board.state()["summary"]
    assert summary["at"]["csr"] == 1 and sum(summary["at"].values()) == 1
    assert summary["finished"] == 1
    assert (summary["stuck_step"], summary["stuck_step_count"]) == ("csr", 1)


def test_a_reset_is_recorded_and_its_note_goes_once_the_trainee_acts(klass, monkeypatch):
    board = boardmod.Board(klass.path)
    alice = _page(klass, "alice")
    _refuse_an_upload(alice)
    board.ask_reset("alice")  # her server was not running: handed over with the next read
    row = _read(board, klass, "alice")
    mr = resolve(klass.data_dir("alice") / "sandbox-MailRoot")
    assert generation(mr).number == 1
    assert (row["resets"], row["reset_note"], row["reset_pending"]) == (1, True, False)
    assert row["refusals"] == 0  # the fresh sandbox starts the count again
    # The page starts again at step 1 (reset_watch: start_afresh): the page
    # moved, the trainee did not, so the board still notes the reset.
    assert _page_noticed(alice.reset_notice.check, lambda: alice.reset_notice.last is not None and alice.current
                         == "diagnose" and "install" not in alice.steps.built())
    assert _read(board, klass, "alice")["reset_note"] is True
    # Acting in the same second as the reset (one clock, frozen) is acting after it.
    frozen = boardmod._now()
    monkeypatch.setattr(boardmod, "_now", lambda: frozen)
    monkeypatch.setattr(
        "xmailnb.ui.classroom._now",
        lambda: dt.datetime.fromtimestamp(frozen, dt.timezone.utc).isoformat(timespec="seconds"))
    alice.show("csr")
    row = _read(board, klass, "alice")
    assert (row["resets"], row["reset_note"]) == (1, False)


# -- over HTTP: a token the trainee mints cannot write their row ---------------------------

async def _serve(app: web.Application) -> tuple[HTTPServer, str]:
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    return server, f"http://127.0.0.1:{port}"


def test_a_report_posted_with_a_minted_token_does_not_change_the_row(klass, monkeypatch):
    monkeypatch.setattr(singleuser, "_hub_auth", FakeHubAuth())
    sandboxes = {n: _sandbox(klass, n) for n in ("alice", "bob")}

    class Route(singleuser.ProgressHandler):  # /user/NAME/xmailnb/progress, as the proxy routes it
        def initialize(self) -> None:  # type: ignore[override]
            pass

        async def post(self, name: str) -> None:  # type: ignore[override]
            self.sandbox = sandboxes[name]
            await super().post()

    forged = {"steps": {s: "done" for s in boardmod._STEP_NAMES}, "last_change": "2030-01-01T00:00:00+00:00",
              "problems": [], "findings": [], "history": [], "generation": 7}

    async def scenario() -> tuple[dict, list[int]]:
        hub, hub_url = await _serve(web.Application([(r"/user/([a-z]+)/xmailnb/progress", Route)]))
        board = boardmod.Board(klass.path)
        app = boardmod.make_app(board, prefix="/services/class-board/", hub_auth=FakeHubAuth(), hub_url=hub_url,
                                api_token="board", cookie_secret=b"x" * 32)
        server, url = await _serve(app)
        client = httpclient.AsyncHTTPClient()
        codes = []
        try:
            response = await client.fetch(url + "/services/class-board/api/report", method="POST",
                                          body=json.dumps(forged), raise_error=False,
                                          headers={"Authorization": "token minted-alice"})
            codes.append(response.code)
            # The trainee's tokens do not open the progress route of her own server either.
            for token in ("minted-alice", "server-alice"):
                response = await client.fetch(hub_url + "/user/alice/xmailnb/progress", method="POST",
                                              body=json.dumps({"inbox": {"messages": []}}), raise_error=False,
                                              headers={"Authorization": f"token {token}"})
                codes.append(response.code)
            for _ in range(100):  # the read the report asked for
                if "alice" in board.received:
                    break
                await asyncio.sleep(0.05)
            return board.state()["trainees"][0], codes
        finally:
            server.stop()
            hub.stop()

    row, codes = run_async(scenario())
    assert codes == [200, 403, 403]
    assert row["reported"] is True
    assert row["steps"]["install"] == "todo" and row["steps"]["csr"] == "todo"
    assert row["generation"] == 0 and row["finished"] is False
    assert read_page(klass.data_dir("alice")) == {}  # nobody wrote in her name


def test_read_me_again_is_taken_from_a_trainees_report_token_only(klass):
    """``POST api/report`` only asks for a read; it is refused to anyone
    but a trainee whose token carries the report scope."""
    models = {"t-alice": TOKENS["server-alice"], "t-sato": {"kind": "user", "name": "sato",
                                                            "scopes": ["custom:xmailnb:report!user=sato"]},
              "t-noscope": {"kind": "user", "name": "bob", "scopes": []},
              "t-svc": {"kind": "service", "name": "class-board", "scopes": []},
              "t-mallory": {"kind": "user", "name": "mallory", "scopes": ["custom:xmailnb:report!user=mallory"]}}

    class Hub(FakeHubAuth):
        async def user_for_token(self, token, use_cache=True, session_id="", *, sync=False):
            return models.get(token)

    async def scenario() -> dict[str, int]:
        board = boardmod.Board(klass.path)
        app = boardmod.make_app(board, prefix="/services/class-board/", hub_auth=Hub(), hub_url="http://127.0.0.1:1",
                                api_token="board", cookie_secret=b"x" * 32)
        server, url = await _serve(app)
        codes = {}
        try:
            for token in (*models, "unknown", ""):
                headers = {"Authorization": f"token {token}"} if token else {}
                response = await httpclient.AsyncHTTPClient().fetch(
                    url + "/services/class-board/api/report", method="POST", body="not json", headers=headers,
                    raise_error=False)
                codes[token] = response.code
        finally:
            server.stop()
        return codes

    assert run_async(scenario()) == {"t-alice": 200, "t-sato": 403, "t-noscope": 403, "t-svc": 403,
                                       "t-mallory": 403, "unknown": 403, "": 403}


def test_a_queued_reset_is_handed_over_once_and_kept_across_a_restart(klass):
    board = boardmod.Board(klass.path)
    board.ask_reset("alice")
    assert boardmod.Board(klass.path).pending == {"alice": 0}
    assert board.asking("alice")["reset"] is True and board.asking("bob")["reset"] is False
    _read(board, klass, "alice")
    assert board.asking("alice")["reset"] is False
    _read(board, klass, "alice")
    assert generation(resolve(klass.data_dir("alice") / "sandbox-MailRoot")).number == 1  # once, not twice
    state = board.state()
    assert [t["name"] for t in state["trainees"]] == ["alice", "bob"]
    assert state["trainees"][1]["reported"] is False and state["trainees"][1]["steps"]["csr"] == "todo"


def test_the_language_chosen_in_the_page_outlives_a_reload(klass):
    first = _page(klass, "alice")
    first.lang_switch.value = "ja"
    again = _page(klass, "alice")  # a reload: a new kernel, a new wizard, opened in English
    assert again.lang == "ja" and again.lang_switch.value == "ja"
    assert "xm-ja" in again._dom_classes
    assert again.class_controls.raise_hand.description == "困っています"
    assert _page(klass, "bob").lang == "en"  # one trainee's choice only


def test_last_change_includes_the_live_check_and_the_notice(klass, frozen_now):
    from xmailnb import clock
    from xmailnb.checks.progress import record_notice, record_probe
    from xmailnb.classroom.readout import snapshot

    mr = resolve(klass.data_dir("alice") / "sandbox-MailRoot")
    _make_csr(klass)
    made = dt.datetime.fromisoformat(snapshot(mr)["last_change"])
    with clock.frozen(frozen_now + dt.timedelta(minutes=5)):
        record_probe(mr, passed=False, worst="error")
    assert dt.datetime.fromisoformat(snapshot(mr)["last_change"]) - made == dt.timedelta(minutes=5)
    with clock.frozen(frozen_now + dt.timedelta(minutes=9)):
        record_notice(mr)
    assert dt.datetime.fromisoformat(snapshot(mr)["last_change"]) - made == dt.timedelta(minutes=9)


def test_a_message_from_the_command_line_reaches_the_page(klass):
    from helpers import run

    result = run("classroom", "message", str(klass.path), "Lunch at 12:30", "--to", "bob", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"queued": True, "time": json.loads(result.out)["time"], "to": "bob",
                                      "text": "Lunch at 12:30"}
    before = read_inbox(klass.data_dir("bob"))
    for argv, said in ((("  ", "--to", "bob", "--lang", "en"), "The message is empty or longer than 500 characters."),
                       (("Hello", "--to", "zed", "--lang", "en"), "zed is not a trainee of this class.")):
        bad = run("classroom", "message", str(klass.path), *argv)
        assert bad.code == 1 and said in bad.err, bad.err
    board = boardmod.Board(klass.path)
    assert board.take_queued() == ["bob"]
    assert board.take_queued() == []  # once
    bob = _page(klass, "bob")
    _read(board, klass, "bob")
    bob.class_controls.check()
    assert "Lunch at 12:30" in bob.class_controls.message.value
    assert read_inbox(klass.data_dir("bob")) != before
    assert boardmod.Board(klass.path).take_queued() == []  # not again after a restart

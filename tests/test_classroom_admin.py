"""The trainer's administration on a class of 30: login slips, passwd,
remove, list, export; every classroom command prints exactly one JSON
document with --json."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from helpers import CSR_ARGS, run, tree
from xmailnb import clock
from xmailnb.checks import progress
from xmailnb.classroom import roster
from xmailnb.flows import actions, practice
from xmailnb.mailroot.layout import MailRoot

TRAINEES = [f"t{i:02d}" for i in range(30)]
T0 = dt.datetime(2031, 5, 12, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A class of 30 made once; each test works on its own copy."""
    root = tmp_path_factory.mktemp("class30") / "class"
    slips = root.parent / "slips.html"
    result = run("classroom", "init", str(root), "--trainer", "sato", "--trainees", ",".join(TRAINEES),
                 "--json", "--slips", str(slips), "--url", "https://class.example.jp/hub/login", "--lang", "en")
    assert result.code == 0, result.err
    return root, result.json, slips.read_text(encoding="utf-8"), stat.S_IMODE(os.stat(slips).st_mode), result.err


@pytest.fixture
def room(pristine, tmp_path):
    root = tmp_path / "class"
    shutil.copytree(pristine[0], root, symlinks=True)
    return root


class _Cards(HTMLParser):
    """Each slip card's name, password and address, and anything that would
    load from elsewhere."""

    def __init__(self):
        super().__init__()
        self.cards, self.external, self.scripts, self._field = [], [], 0, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "section" and "xm-slip" in classes:
            self.cards.append({})
        for field in ("name", "password", "address"):
            if f"xm-slip-{field}" in classes:
                self._field = field
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(a[key])

    def handle_data(self, data):
        if self._field and data.strip():
            self.cards[-1][self._field] = data.strip()
            self._field = None


def _cards(text):
    parser = _Cards()
    parser.feed(text)
    return parser


def test_init_of_30_prints_one_json_document_and_writes_one_slip_per_person(pristine):
    root, doc, slips, mode, err = pristine
    assert set(doc) == {"accounts", "url", "url_hint", "slips"}
    assert doc["url"] == "https://class.example.jp/hub/login"
    assert [a["name"] for a in doc["accounts"]] == ["sato", *TRAINEES]
    assert mode == 0o600  # the slips hold passwords
    parsed = _cards(slips)
    assert parsed.cards == [{"name": a["name"], "password": a["password"], "address": doc["url"]}
                            for a in doc["accounts"]]
    assert parsed.external == [] and parsed.scripts == 0  # self-contained: prints offline
    assert "<link" not in slips and "@import" not in slips and "url(" not in slips
    assert "Login name / ログイン名" in slips and "Password / パスワード" in slips
    assert f"Login slips written to {doc['slips']} (31 cards)" in err


def test_slips_follow_the_class_language_first(tmp_path):
    slips = tmp_path / "s.html"
    result = run("classroom", "init", str(tmp_path / "c"), "--trainer", "mori", "--trainees", "ito",
                 "--lang", "ja", "--slips", str(slips))
    assert result.code == 0
    text = slips.read_text(encoding="utf-8")
    assert "ログイン名 / Login name" in text and '<html lang="ja">' in text
    # No --url and never served: the address `classroom serve` uses by default.
    assert {c["address"] for c in _cards(text).cards} == {"http://127.0.0.1:8000/hub/login"}


def test_passwd_gives_one_new_password_and_nothing_else_changes(room):
    before = roster.password_hashes(roster.load(room))
    slips = room.parent / "t07.html"
    result = run("classroom", "passwd", str(room), "t07", "--json", "--slips", str(slips))
    assert result.code == 0, result.err
    doc = result.json
    assert [(a["name"], a["role"]) for a in doc["accounts"]] == [("t07", "trainee")]
    new = doc["accounts"][0]["password"]
    after = roster.password_hashes(roster.load(room))
    assert roster.verify_password(new, after["t07"]) and after["t07"] != before["t07"]
    assert {k: v for k, v in after.items() if k != "t07"} == {k: v for k, v in before.items() if k != "t07"}
    assert _cards(slips.read_text(encoding="utf-8")).cards == [
        {"name": "t07", "password": new, "address": "https://class.example.jp/hub/login"}]
    assert "t07 has a new password; the old one no longer works." in result.err
    # Unknown name: refused, nothing changed.
    snapshot = tree(room)
    result = run("classroom", "passwd", str(room), "nobody", "--json")
    assert result.code == 1 and result.json["error"]["key"] == "classroom.name.unknown"
    assert tree(room) == snapshot


def test_the_served_address_is_the_one_given_out(room):
    r = roster.load(room)
    roster.remember_address(r, "http://10.0.0.5:8100/hub/login")  # what `serve --ip 10.0.0.5 --port 8100` keeps
    # The address given with --url at init (a reverse proxy) still wins ...
    assert run("classroom", "add", str(room), "newcomer", "--json").json["url"] == \
        "https://class.example.jp/hub/login"
    # ... and without one, the address the class was served at, not port 8000.
    (room / "hub" / "address.json").unlink()
    roster.remember_address(r, "http://10.0.0.5:8100/hub/login")
    assert run("classroom", "add", str(room), "late", "--json").json["url"] == "http://10.0.0.5:8100/hub/login"
    assert run("classroom", "list", str(room), "--json").json["url"] == "http://10.0.0.5:8100/hub/login"
    bad = run("classroom", "passwd", str(room), "t01", "--url", "class.example.jp", "--json")
    assert bad.code == 2 and bad.json["error"]["key"] == "classroom.url.invalid"


def test_remove_archives_the_sandbox_and_the_login_stops_working(room):
    from xmailnb.classroom.hub import ClassAuthenticator

    box = roster.load(room).sandbox("t12")
    content = tree(box)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMAILNB_")}
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    theirs = subprocess.Popen(sleeper, env={**env, "XMAILNB_DATA_DIR": str(room / "users" / "t12")})
    other = subprocess.Popen(sleeper, env={**env, "XMAILNB_DATA_DIR": str(room / "users" / "t13")})
    try:
        with clock.frozen(T0):
            result = run("classroom", "remove", str(room), "t12", "--json")
        assert result.code == 0, result.err
        assert theirs.wait(timeout=20) == -signal.SIGTERM  # their workbook server here stops
        assert other.poll() is None  # nobody else's
    finally:
        for p in (theirs, other):
            p.kill()
            p.wait()
    archived = room / "removed" / "t12-20310512T090000Z"
    assert result.json == {"removed": "t12", "archived": str(archived), "trainees": 29}
    assert tree(archived / "sandbox-MailRoot") == content  # nothing deleted
    assert not (room / "users" / "t12").exists()
    assert stat.S_IMODE(os.stat(room / "removed").st_mode) == 0o700
    now = roster.load(room)
    assert now.account("t12") is None and len(now.trainees) == 29
    assert "t12" not in roster.password_hashes(now)
    assert ClassAuthenticator(class_dir=str(room)).check_allowed("t12") is False
    # The trainer, or someone not in the class: refused, nothing changed.
    snapshot = tree(room)
    for name, key in (("sato", "classroom.remove.trainer"), ("t12", "classroom.name.unknown")):
        result = run("classroom", "remove", str(room), name, "--json")
        assert result.code == 1 and result.json["error"]["key"] == key
    assert tree(room) == snapshot
    # Added again later: a fresh sandbox, the archive kept.
    assert run("classroom", "add", str(room), "t12").code == 0
    assert (room / "users" / "t12" / "sandbox-MailRoot" / "server.tab").is_file()
    assert tree(archived / "sandbox-MailRoot") == content


def test_list_json_names_all_31(room):
    result = run("classroom", "list", str(room), "--json")
    assert result.code == 0
    doc = json.loads(result.out)
    assert doc["trainer"] == "sato" and doc["trainees"] == 30 and doc["path"] == str(room)
    assert [(a["name"], a["role"]) for a in doc["accounts"]] == [("sato", "trainer")] + [
        (n, "trainee") for n in TRAINEES]
    ports = [p for a in doc["accounts"] for p in a["ports"].values()]
    assert len(ports) == len(set(ports)) == 62
    assert doc["accounts"][5]["sandbox"] == str(room / "users" / TRAINEES[4] / "sandbox-MailRoot")
    text = run("classroom", "list", str(room))
    assert text.code == 0 and len(text.out.splitlines()) == 32


def _finish(mr: MailRoot, at: dt.datetime) -> None:
    """The whole sandbox flow, one step a minute from *at*."""
    with clock.frozen(at):
        assert run("diagnose", "--mailroot", str(mr.path)).code == 1  # a fresh sandbox has problems to fix
        assert run("csr", "--mailroot", str(mr.path), *CSR_ARGS).code == 0
    with clock.frozen(at + dt.timedelta(minutes=1)):
        practice.sign_pending_csr(mr)
    with clock.frozen(at + dt.timedelta(minutes=2)):
        issued = practice.issued(mr)
        plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                    [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")],
                                    hostname="mail.example.jp")
        actions.apply_install(mr, plan)
    with clock.frozen(at + dt.timedelta(minutes=3)):
        progress.record_probe(mr, passed=True, worst="info")
    with clock.frozen(at + dt.timedelta(minutes=4)):
        progress.record_notice(mr)


def test_export_of_30_says_each_step_and_when_it_was_reached(room):
    r = roster.load(room)
    with clock.frozen(T0):
        assert run("csr", "--mailroot", str(r.sandbox("t03")), *CSR_ARGS).code == 0
    _finish(MailRoot(r.sandbox("t09"), is_sandbox=True), T0 + dt.timedelta(hours=1))
    # What the board keeps of each trainee's page (board.py's "pages": refused attempts, raised hands).
    refused = {"time": "2031-05-12T09:30:00+00:00", "step": "install", "generation": 0,
               "reason": {"en": "does not match the key", "ja": "鍵と対応していません"}}
    (room / "hub" / "board-state.json").write_text(json.dumps({"reports": {}, "pages": {
        "t05": {"refusals": [refused, refused], "hand_raises": 1},
        "t06": {"refusals": [refused], "hand_raises": 0}}}))
    out = room.parent / "class.csv"
    with clock.frozen(T0 + dt.timedelta(hours=2)):
        result = run("classroom", "export", str(room), "--csv", str(out), "--json")
    assert result.code == 0, result.err
    assert "Progress of 30 trainees written to" in result.err and "(1 finished)" in result.err
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [row["name"] for row in rows] == TRAINEES
    by = {row["name"]: row for row in rows}
    assert by["t03"]["csr"] == "done" and by["t03"]["csr_reached"] == "2031-05-12T09:00:00+00:00"
    assert by["t03"]["submit"] == "todo" and by["t03"]["submit_reached"] == ""
    assert by["t03"]["finished"] == "no"
    t09 = by["t09"]
    assert t09["finished"] == "yes"
    assert [t09[f"{s}_reached"] for s in ("csr", "submit", "install", "settings", "probe", "notice")] == [
        "2031-05-12T10:00:00+00:00", "2031-05-12T10:01:00+00:00", "2031-05-12T10:02:00+00:00",
        "2031-05-12T10:02:00+00:00", "2031-05-12T10:03:00+00:00", "2031-05-12T10:04:00+00:00"]
    for name in ("t03", "t09", "t10"):  # the marks are the workbook's own rule, step by step
        mr = MailRoot(r.sandbox(name), is_sandbox=True)
        with clock.frozen(T0 + dt.timedelta(hours=2)):
            states = {str(k): str(v) for k, v in progress.step_progress(mr).states.items()}
        assert {k: by[name][k] for k in states} == states
    assert (by["t05"]["refusals"], by["t05"]["hand_raises"]) == ("2", "1")
    assert (by["t06"]["refusals"], by["t06"]["hand_raises"]) == ("1", "0")
    assert (by["t07"]["refusals"], by["t07"]["hand_raises"]) == ("", "")  # the board keeps nothing: not guessed
    assert all(row["resets"] == "0" for row in rows)
    doc = result.json
    assert doc["csv"] == str(out) and [t["name"] for t in doc["trainees"]] == TRAINEES
    assert doc["trainees"][9]["finished"] is True and doc["trainees"][5]["refusals"] == 2


def test_slips_that_cannot_be_written_are_refused_before_anything_changes(room, tmp_path):
    snapshot = tree(room)
    nowhere = str(tmp_path / "no" / "such" / "slips.html")
    for argv in (("add", str(room), "carol"), ("passwd", str(room), "t02")):
        result = run("classroom", *argv, "--slips", nowhere, "--json")
        assert result.code == 1 and result.json["error"]["key"] == "classroom.file.unwritable"
    assert tree(room) == snapshot
    result = run("classroom", "init", str(tmp_path / "other"), "--trainer", "a", "--trainees", "b",
                 "--slips", str(tmp_path), "--json")
    assert result.code == 1 and result.json["error"]["field"] == "slips"
    assert not (tmp_path / "other").exists()


def test_export_refuses_a_place_it_cannot_write(room):
    result = run("classroom", "export", str(room), "--csv", str(room / "no" / "such" / "x.csv"), "--json")
    assert result.code == 1 and result.json["error"]["key"] == "classroom.file.unwritable"


@pytest.mark.parametrize("argv", [
    ("init", "{root}/new", "--trainer", "a", "--trainees", "b"),
    ("add", "{root}", "carol"),
    ("passwd", "{root}", "t00"),
    ("remove", "{root}", "t01"),
    ("list", "{root}"),
    ("export", "{root}", "--csv", "{root}/../e.csv"),
    ("config", "{root}"),
    ("serve", "{root}", "--ip", "0.0.0.0"),  # refused: still one document
    ("passwd", "{root}/../nothing", "x"),
])
def test_every_classroom_command_prints_exactly_one_json_document(room, argv):
    result = run("classroom", *(a.format(root=room) for a in argv), "--json")
    json.loads(result.out)  # exactly one document: anything more would not parse
    assert result.out.strip().startswith("{") and result.out.count("\n}") == 1

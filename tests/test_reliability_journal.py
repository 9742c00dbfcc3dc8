"""A journal damaged after a kill: the next command still ends with a matching pair.

An install is killed between its two renames (server.cert new, server.key
old: the pair is split on disk), then the journal is damaged the way a crash,
a full disk or a careless hand leaves it.  The next command of any kind must
set the journal aside (never a permanent block), repair the MailRoot from
what is on disk, say so, and leave a MailRoot where ``install`` works again.
Journal fields are never trusted: modes and owners come from the store's
rules, and a journal may not remove an archived state it did not make.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from helpers import run, store_leftovers, user_view
import test_reliability_crash as crash
from test_reliability_crash import _actions, _fresh, _split_step, killed_at, pair_ok
from xmailnb.files import sha256_hex
from xmailnb.mailroot import store as storemod
from xmailnb.mailroot.layout import MailRoot

pytestmark = pytest.mark.slow  # forks and kills

JOURNAL = Path("sslconf") / ".xmailnb-journal.json"

# The crash test's MailRoot with history, and its certificates.
material = crash.material
template = crash.template


def _truncated(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _invalid(p: Path) -> None:
    p.write_bytes(b'{"version": 1, "id": ')


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _folder(p: Path) -> None:
    p.unlink()
    p.mkdir()
    (p / "inside").write_bytes(b"someone's file")


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def _huge(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-2] + b" " * (2 * 1024 * 1024) + b"}\n")


def _unknown_state(p: Path) -> None:
    doc = json.loads(p.read_bytes())
    doc["state"] = "finishing"
    p.write_text(json.dumps(doc))


def _deep(p: Path) -> None:
    p.write_bytes(b"[" * 100000)


def _not_an_object(p: Path) -> None:
    p.write_bytes(b'"commit"')


def _other_id(p: Path) -> None:
    doc = json.loads(p.read_bytes())
    doc["id"] = "../../etc"
    p.write_text(json.dumps(doc))


DAMAGE = {"truncated": _truncated, "invalid": _invalid, "empty": _empty, "folder": _folder,
          "fifo": _fifo, "2MB": _huge, "unknown-state": _unknown_state, "deep": _deep,
          "not-an-object": _not_an_object, "bad-id": _other_id}


@pytest.fixture(scope="module")
def split(material, template, tmp_path_factory):
    """(step that splits the pair, state before, state after) of the install."""
    make = _actions(material)["install"]
    where = tmp_path_factory.mktemp("split")
    ref = _fresh(template, where / "ref")
    before = user_view(ref.path)
    make(ref)()
    after = user_view(ref.path)
    return _split_step(make, template, where, before, after), before, after


def _install_again(material, mr: MailRoot, tmp_path: Path) -> None:
    h, _h2 = material
    cert, key = tmp_path / "again.pem", tmp_path / "again.key"
    cert.write_bytes(h.chain_pem)
    key.write_bytes(h.leaf.key_pem())
    r = run("install", "--mailroot", str(mr.path), "--cert", str(cert), "--key", str(key))
    assert r.code == 0, r.err
    assert (mr.path / "server.cert").read_bytes().startswith(h.leaf.pem)
    assert pair_ok(mr.path)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("command", ["diagnose", "history", "settings"])
def test_damaged_journal_after_a_split_pair(damage, command, material, template, split, tmp_path):
    step, before, after = split
    mr = _fresh(template, tmp_path / "run")
    assert killed_at(_actions(material)["install"](mr), step)[0]
    assert not pair_ok(mr.path)
    DAMAGE[damage](mr.path / JOURNAL)

    argv = [command, "--mailroot", str(mr.path)]
    if command == "settings":
        argv += ["--set", "SSLUseCertsFile=1"]
    r = run(*argv, "--lang", "en") if command != "settings" else run(*argv)
    assert r.code in (0, 1), r.err
    assert pair_ok(mr.path), f"{damage}: the pair stayed mismatched after {command}"
    # The staged key is gone and no journal is left: the next write is not blocked.
    assert store_leftovers(mr.path) == []
    assert not os.path.lexists(mr.path / JOURNAL)
    aside = list((mr.path / "sslconf" / "archive" / storemod.SET_ASIDE).iterdir())
    assert [p.name.endswith(".xmailnb-journal.json") for p in aside] == [True]
    assert "sslconf/archive/set-aside/" in r.err
    if command != "settings":
        # Undone from the archive: exactly the state before the install, and
        # no archive entry for a change that did not happen.
        assert user_view(mr.path) == before
        assert len(storemod.Store(mr).history()) == len(storemod.Store(_fresh(template, tmp_path / "t")).history())
    _install_again(material, mr, tmp_path)


def test_damaged_journal_and_a_lost_staged_key(material, template, split, tmp_path):
    """Nothing on disk names the change any more (journal damaged, the staged
    key gone): the pair is still made to match, from the archive, and the
    version it replaces is archived."""
    step, before, _after = split
    mr = _fresh(template, tmp_path / "run")
    assert killed_at(_actions(material)["install"](mr), step)[0]
    staged = [p for p in mr.path.rglob(".*.xmailnb-tmp")]
    assert [p.name.startswith(".server.key.") for p in staged].count(True) == 1
    for p in staged:
        p.unlink()
    _truncated(mr.path / JOURNAL)
    new_cert = (mr.path / "server.cert").read_bytes()
    r = run("history", "--mailroot", str(mr.path), "--lang", "en")
    assert r.code == 0, r.err
    assert pair_ok(mr.path)
    assert "server.cert and server.key did not belong together: server.cert was put back" in r.err
    assert (mr.path / "server.cert").read_bytes() != new_cert
    newest = storemod.Store(mr).history()[0]
    assert newest.action == "rollback"
    assert storemod.Store(mr).archived_bytes(newest)["server.cert"] == new_cert  # nothing lost
    assert store_leftovers(mr.path) == []
    _install_again(material, mr, tmp_path)


def test_damaged_journal_message_in_japanese(material, template, split, tmp_path):
    step, before, _after = split
    mr = _fresh(template, tmp_path / "run")
    assert killed_at(_actions(material)["install"](mr), step)[0]
    _invalid(mr.path / JOURNAL)
    r = run("history", "--mailroot", str(mr.path), "--lang", "ja")
    assert r.code == 0, r.err
    assert "変更記録は使えない状態でした" in r.err
    assert "sslconf/archive/set-aside/" in r.err
    assert user_view(mr.path) == before


@pytest.mark.parametrize("damage", ["invalid", "truncated", "folder"])
def test_damaged_journal_after_a_kill_at_every_step(damage, material, template, tmp_path):
    """A kill before any step of an install, then a damaged (or a garbage) journal:
    always a matching pair, always exactly the old or the new state, and
    install works again afterwards."""
    make = _actions(material)["install"]
    ref = _fresh(template, tmp_path / "ref")
    before = user_view(ref.path)
    make(ref)()
    after = user_view(ref.path)
    kills = 0
    for n in range(1, 200):
        mr = _fresh(template, tmp_path / "run")
        fired, _ = killed_at(make(mr), n)
        journal = mr.path / JOURNAL
        if not journal.exists():
            journal.write_bytes(b'{"state": "commit", "id": "20000101T000000000000Z"}')
        DAMAGE[damage](journal)
        r = run("diagnose", "--mailroot", str(mr.path), "--json")
        assert r.code in (0, 1), r.err
        assert pair_ok(mr.path), f"kill before step {n}, {damage} journal: mismatched pair"
        assert user_view(mr.path) in (before, after), f"kill before step {n}: mixed state"
        assert store_leftovers(mr.path) == [], f"kill before step {n}: {store_leftovers(mr.path)}"
        for entry in storemod.Store(mr).history():
            storemod.Store(mr).archived_bytes(entry)
        if not fired:
            break
        kills += 1
    print(f"damaged journal ({damage}): killed at {kills} steps, each repaired by the next command")
    assert kills >= 10
    _install_again(material, mr, tmp_path)


def test_journal_modes_are_not_trusted(material, template, tmp_path):
    """A CSR killed after server.key was replaced, its staged CSR lost, and a
    journal asking for mode 0644: the key put back is 0600 all the same."""
    make = _actions(material)["csr"]
    ref = _fresh(template, tmp_path / "ref")
    old_key = (ref.path / "sslconf" / "server.key").read_bytes()
    make(ref)()
    new_key = (ref.path / "sslconf" / "server.key").read_bytes()
    for n in range(1, 200):
        mr = _fresh(template, tmp_path / "run")
        assert killed_at(make(mr), n)[0]
        key = mr.path / "sslconf" / "server.key"
        journal = mr.path / JOURNAL
        if key.read_bytes() == new_key and journal.exists():
            break
    else:
        raise AssertionError("no step leaves the new key in place with a journal")
    doc = json.loads(journal.read_bytes())
    assert doc["state"] == "commit"
    for rel, info in doc["files"].items():
        info["mode"], info["owner"] = 0o644, [65534, 65534]
        if rel != "sslconf/server.key" and info["tmp"]:
            folder = (mr.path / rel).parent
            (folder / info["tmp"]).unlink()  # a staged file lost: the change is undone
    journal.write_text(json.dumps(doc))
    assert run("history", "--mailroot", str(mr.path)).code == 0
    assert key.read_bytes() == old_key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert store_leftovers(mr.path) == []


def test_prepare_journal_naming_an_existing_entry_keeps_it(template, tmp_path, frozen_now):
    mr = _fresh(template, tmp_path / "run")
    store = storemod.Store(mr)
    entries = store.history()
    target = entries[-1]  # the oldest: "before install"
    before = user_view(mr.path)
    cert = (mr.path / "server.cert").read_bytes()
    for token in ("0" * 32, None):
        doc = {"version": 1, "id": target.id, "action": "install", "state": "prepare",
               "files": {"server.cert": {"old": sha256_hex(cert), "new": sha256_hex(b"x"),
                                         "tmp": f".server.cert.{target.id}.xmailnb-tmp"}}}
        if token:
            doc["token"] = token
        (mr.path / JOURNAL).write_text(json.dumps(doc))
        assert run("history", "--mailroot", str(mr.path)).code == 0
        assert [e.id for e in store.history()] == [e.id for e in entries]
        assert store.archived_bytes(target)  # still whole
        assert user_view(mr.path) == before
        assert store_leftovers(mr.path) == []


def test_commit_journal_naming_an_older_entry_restores_nothing(template, tmp_path):
    """A well-formed "commit" journal naming an older archive entry (not its
    own): nothing is put back from that entry, nothing is removed."""
    mr = _fresh(template, tmp_path / "run")
    store = storemod.Store(mr)
    entries = store.history()
    target = entries[-1]
    before = user_view(mr.path)
    cert = (mr.path / "server.cert").read_bytes()
    doc = {"version": 1, "id": target.id, "action": "install", "state": "commit", "token": "1" * 32,
           "files": {"server.cert": {"old": target.files.get("server.cert"), "new": sha256_hex(cert),
                                     "tmp": f".server.cert.{target.id}.xmailnb-tmp"}}}
    (mr.path / JOURNAL).write_text(json.dumps(doc))
    assert run("history", "--mailroot", str(mr.path)).code == 0
    assert user_view(mr.path) == before
    assert [e.id for e in store.history()] == [e.id for e in entries]

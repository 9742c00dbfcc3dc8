"""The store: archive first, atomic replace, rollback, busy lock, audit log."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import helpers

from xmailnb.mailroot import store as storemod
from xmailnb.errors import BusyError, InputError
from xmailnb.mailroot.layout import MailRoot
from xmailnb.mailroot.store import Store, StoreError, sha256_hex


@pytest.fixture
def mr(tmp_path):
    (tmp_path / "server.tab").write_bytes(b'"RootDomain"\t"example.jp"\n')
    return MailRoot(tmp_path)


def tree(root) -> dict[str, str]:
    """Hash of every file below *root* except the store's own bookkeeping."""
    return helpers.tree(Path(root), exclude=("sslconf/archive*", "*audit.log", helpers.LOCK))


def test_apply_archives_previous_and_writes_new(mr):
    mr.server_cert.write_bytes(b"old cert")
    entry = Store(mr).apply("install", {"server.cert": b"new cert", "server.key": b"new key"})
    assert mr.server_cert.read_bytes() == b"new cert"
    assert mr.server_key.read_bytes() == b"new key"
    assert entry is not None and entry.files == {"server.cert": sha256_hex(b"old cert"), "server.key": None}
    assert (entry.path / "files" / "server.cert").read_bytes() == b"old cert"


def test_keys_are_private_and_archive_is_private(mr):
    mr.server_key.write_bytes(b"old")
    os.chmod(mr.server_key, 0o644)
    entry = Store(mr).apply("install", {"server.key": b"new", "sslconf/server.key": b"pending"})
    assert stat.S_IMODE(mr.server_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(mr.pending_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(mr.archive_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((entry.path / "files" / "server.key").stat().st_mode) == 0o600


def test_other_files_keep_their_mode(mr):
    os.chmod(mr.server_tab, 0o640)
    Store(mr).apply("settings", {"server.tab": b'"RootDomain"\t"example.com"\n'})
    assert stat.S_IMODE(mr.server_tab.stat().st_mode) == 0o640


def test_no_change_writes_nothing(mr):
    assert Store(mr).apply("settings", {"server.tab": mr.server_tab.read_bytes()}) is None
    assert Store(mr).history() == []


def test_failure_on_second_rename_restores_everything(mr, monkeypatch):
    mr.server_cert.write_bytes(b"old cert")
    mr.server_key.write_bytes(b"old key")
    before = tree(mr.path)
    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src, dst, **kw):
        # Renames are made relative to the open folder: dst is the bare name.
        if os.fspath(dst) == "server.key":
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError(28, "No space left on device")
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(storemod, "_replace", failing_replace)
    with pytest.raises(StoreError) as err:
        Store(mr).apply("install", {"server.cert": b"new cert", "server.key": b"new key"})
    assert err.value.msg.key == "store.write_failed"
    assert tree(mr.path) == before
    assert Store(mr).history() == []  # nothing changed, so no noise in history
    leftovers = [p for p in mr.path.rglob("*") if "xmailnb-tmp" in p.name or p.name.endswith(".partial")]
    assert leftovers == []
    audit = Store(mr).audit_records()
    assert audit[-1].result == "failed"


def test_failure_while_archiving_changes_nothing(mr, monkeypatch):
    mr.server_cert.write_bytes(b"old cert")
    before = tree(mr.path)
    real_replace = os.replace

    def failing_replace(src, dst, **kw):
        if str(src).endswith(".partial"):  # the archive entry being put in place
            raise OSError(13, "Permission denied")
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(storemod, "_replace", failing_replace)
    with pytest.raises(StoreError) as err:
        Store(mr).apply("install", {"server.cert": b"new cert"})
    assert err.value.msg.key == "store.archive_failed"
    monkeypatch.undo()
    assert tree(mr.path) == before
    assert not [p for p in mr.archive_dir.iterdir()]


def test_failure_of_fsync_leaves_files(mr, monkeypatch):
    mr.server_cert.write_bytes(b"old cert")
    before = tree(mr.path)

    def bad_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storemod, "_fsync", bad_fsync)
    with pytest.raises(StoreError):
        Store(mr).apply("install", {"server.cert": b"new cert", "server.key": b"k"})
    monkeypatch.undo()
    assert tree(mr.path) == before


def test_rollback_restores_and_second_rollback_undoes(mr):
    mr.server_cert.write_bytes(b"v1")
    s = Store(mr)
    s.apply("install", {"server.cert": b"v2", "server.key": b"k2"})
    target, new = s.rollback()
    assert mr.server_cert.read_bytes() == b"v1"
    assert not mr.server_key.exists()  # it did not exist before the install
    assert target.action == "install" and new is not None and new.action == "rollback"
    s.rollback()
    assert mr.server_cert.read_bytes() == b"v2" and mr.server_key.read_bytes() == b"k2"


def test_rollback_to_specific_id_and_unknown_id(mr):
    s = Store(mr)
    e1 = s.apply("install", {"server.cert": b"v1"})
    s.apply("install", {"server.cert": b"v2"})
    s.rollback(e1.id)
    assert not mr.server_cert.exists()
    with pytest.raises(InputError) as err:
        s.rollback("19990101T000000000000Z")
    assert err.value.msg.key == "store.history.unknown"


def test_rollback_with_empty_history(mr):
    with pytest.raises(InputError) as err:
        Store(mr).rollback()
    assert err.value.msg.key == "store.history.empty"


def test_corrupt_archive_is_refused(mr):
    mr.server_cert.write_bytes(b"v1")
    s = Store(mr)
    e = s.apply("install", {"server.cert": b"v2"})
    (e.path / "files" / "server.cert").write_bytes(b"tampered")
    with pytest.raises(InputError) as err:
        s.rollback()
    assert err.value.msg.key == "store.archive.corrupt"
    assert mr.server_cert.read_bytes() == b"v2"


def test_history_newest_first_and_unique_ids(mr):
    s = Store(mr)
    for i in range(5):
        s.apply("settings", {"server.tab": f'"RootDomain"\t"d{i}.jp"\n'.encode()})
    ids = [e.id for e in s.history()]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5


def test_audit_log_has_fingerprints_not_contents(mr):
    secret = b"-----BEGIN RSA PRIVATE KEY-----\nsecret\n-----END RSA PRIVATE KEY-----\n"
    Store(mr).apply("install", {"server.key": secret}, details={"note": "x"})
    log = mr.audit_log.read_bytes()
    assert b"PRIVATE KEY" not in log and b"secret" not in log
    record = json.loads(log.splitlines()[-1])
    assert record["files"]["server.key"]["after"] == sha256_hex(secret)
    assert record["action"] == "install" and record["result"] == "ok"


def test_audit_records_are_the_lines_on_disk_and_skip_what_is_not_a_record(mr):
    secret = b"-----BEGIN RSA PRIVATE KEY-----\nsecret\n-----END RSA PRIVATE KEY-----\n"
    Store(mr).apply("install", {"server.key": secret}, details={"note": "x", "bits": 2048})
    with open(mr.audit_log, "a", encoding="utf-8") as fh:  # a line cut short, a line written by hand
        fh.write('{"time": "2026-\n[1, 2]\n{"result": "ok"}\n')
    Store(mr).apply("settings", {"server.tab": b"x"})
    lines = [json.loads(line) for line in mr.audit_log.read_text(encoding="utf-8").splitlines()
             if line.startswith('{"action"')]
    records = Store(mr).audit_records()
    assert [r.to_json() for r in records] == lines  # what the log holds, key for key
    install = records[0]
    assert (install.action, install.result, install.ok) == ("install", "ok", True)
    assert install.files["server.key"]["after"] == sha256_hex(secret) and install.details["bits"] == 2048
    assert install.when() is not None and install.when().tzinfo is not None
    assert [r.action for r in records] == ["install", "settings"]
    assert storemod.AuditRecord.from_json(install.to_json()) == install


def _hold_lock(mr, seconds: float | None = None) -> subprocess.Popen:
    """Another process that holds the lock for *seconds*, or until its
    stdin is closed.  (select(), not time.sleep() or a timer thread: those
    take absolute deadlines that faketime can move.)"""
    hold = f"select.select([], [], [], {seconds})" if seconds is not None else "sys.stdin.read()"
    script = textwrap.dedent(f"""
        import select, sys
        from xmailnb.mailroot.layout import MailRoot
        from xmailnb.mailroot.store import Store
        with Store(MailRoot(__import__('pathlib').Path({str(mr.path)!r}))).lock():
            print('locked', flush=True)
            {hold}
        print('released', flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_is_told_busy(mr, tmp_path):
    # Another process keeps the lock longer than a writer waits: the write
    # is refused, never interleaved.
    proc = _hold_lock(mr)
    try:
        with pytest.raises(BusyError):
            Store(mr, wait=0.5).apply("install", {"server.cert": b"x"})
        assert not mr.server_cert.exists()
    finally:
        proc.kill()
        proc.wait()
    # The lock dies with its holder: no stale lock.
    Store(mr, wait=0).apply("install", {"server.cert": b"x"})
    assert mr.server_cert.read_bytes() == b"x"


def test_second_writer_waits_for_a_short_holder(mr):
    # Two admins saving at nearly the same time both succeed, one after the other.
    proc = _hold_lock(mr, seconds=1.0)
    try:
        Store(mr, wait=60).apply("install", {"server.cert": b"after the other"})
        # It really waited: the holder had let go before the write.
        assert proc.stdout.readline().strip() == "released"
    finally:
        proc.kill()
        proc.wait()
    assert mr.server_cert.read_bytes() == b"after the other"


def test_plain_rollback_steps_over_bookkeeping_entries(mr):
    s = Store(mr)
    s.apply("install", {"server.cert": b"v1"})
    s.apply("checklist", {"sslconf/checklist.json": b'{"sent": true}'})
    s.apply("acme", {"sslconf/acme/status.json": b"{}"})
    target, _new = s.rollback()
    assert target.action == "install"
    assert not mr.server_cert.exists()
    # The bookkeeping files are left as they are, and still reachable by id.
    assert mr.file("sslconf/checklist.json").read_bytes() == b'{"sent": true}'
    assert [e.action for e in s.history(bookkeeping=False)] == ["rollback", "install"]


def test_every_action_is_named_in_both_languages():
    from xmailnb.i18n import text
    from xmailnb.mailroot.store import Action

    for action in Action:
        for lang in ("en", "ja"):
            assert text(f"store.action.{action}", lang) != f"store.action.{action}", (action, lang)

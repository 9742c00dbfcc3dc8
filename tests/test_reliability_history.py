"""History follows the order of changes, not the clock.

With the clock set back a year (an NTP correction, a wrong BIOS clock) the
archive ids, which come from the clock, sort before the older changes: the
store orders its history by a sequence number it assigns instead, so that
``rollback`` undoes the last change.  And the practice CA made "in the
future" is not used to sign under the at clock.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

import pki
from helpers import CSR_ARGS, run
from xmailnb import clock
from xmailnb.mailroot import store as storemod
from xmailnb.mailroot.layout import MailRoot

YEAR = dt.timedelta(days=365)


def _install(mailroot: Path, tmp_path: Path, h: pki.Hierarchy) -> None:
    cert, key = tmp_path / "chain.pem", tmp_path / "leaf.key"
    cert.write_bytes(h.chain_pem)
    key.write_bytes(h.leaf.key_pem())
    r = run("install", "--mailroot", str(mailroot), "--cert", str(cert), "--key", str(key))
    assert r.code == 0, r.err


def _pair(mailroot: Path) -> tuple[bytes, bytes]:
    return (mailroot / "server.cert").read_bytes(), (mailroot / "server.key").read_bytes()


def test_rollback_undoes_the_last_change_with_the_clock_set_back(mailroot, tmp_path, frozen_now):
    h = pki.hierarchy()
    _install(mailroot, tmp_path, h)
    pair = _pair(mailroot)
    tab = mailroot / "server.tab"
    with clock.frozen(frozen_now - YEAR):
        before = tab.read_bytes()
        r = run("settings", "--mailroot", str(mailroot), "--set", "SSLUseCertsFile=1")
        assert r.code == 0, r.err
        changed = tab.read_bytes()
        assert changed != before

        r = run("rollback", "--mailroot", str(mailroot))
        assert r.code == 0, r.err
        assert tab.read_bytes() == before  # the settings change is undone
        assert _pair(mailroot) == pair  # and the certificate stays

        r = run("rollback", "--mailroot", str(mailroot))
        assert r.code == 0, r.err
        assert tab.read_bytes() == changed  # the second undoes the first
        assert _pair(mailroot) == pair

    entries = run("history", "--mailroot", str(mailroot), "--json").json
    assert [e["action"] for e in entries] == ["rollback", "rollback", "settings", "install"]
    assert [e.seq for e in storemod.Store(MailRoot(mailroot, is_sandbox=True)).history()] == [4, 3, 2, 1]
    # The times are shown as they were recorded: the clock's, not the order's.
    assert entries[0]["time"] < entries[3]["time"]


def test_sequence_survives_restarts_and_a_clock_going_back_and_forth(mailroot, frozen_now):
    store = storemod.Store(MailRoot(mailroot, is_sandbox=True))
    moments = [frozen_now, frozen_now - YEAR, frozen_now + YEAR, frozen_now - 2 * YEAR]
    for n, at in enumerate(moments):
        with clock.frozen(at):
            store.apply("settings", {"server.tab": b'"SSLUseCertsFile"\t"%d"\n' % n})
        store = storemod.Store(MailRoot(mailroot, is_sandbox=True))  # a new process, as far as the store knows
    assert [e.seq for e in store.history()] == [4, 3, 2, 1]
    assert store.entry(None).seq == 4
    assert store.archived_bytes(store.entry(None))["server.tab"] == b'"SSLUseCertsFile"\t"2"\n'


def test_entries_without_a_sequence_come_before_the_numbered_ones(mailroot, frozen_now):
    """Entries of at versions (no sequence) are older than any numbered
    one, and among themselves in the order of their ids."""
    mr = MailRoot(mailroot, is_sandbox=True)
    store = storemod.Store(mr)
    for n in range(3):
        with clock.frozen(frozen_now + dt.timedelta(seconds=n)):
            store.apply("settings", {"server.tab": b"# %d\n" % n})
    for entry in store.history():
        manifest = mr.archive_dir / entry.id / "manifest.json"
        doc = json.loads(manifest.read_bytes())
        del doc["seq"]
        manifest.write_text(json.dumps(doc))
    shutil.rmtree(mr.archive_dir / storemod.ORDER_DIR)
    legacy = [e.id for e in store.history()]
    assert legacy == sorted(legacy, reverse=True)
    with clock.frozen(frozen_now - YEAR):
        new = store.apply("settings", {"server.tab": b"# new\n"})
    assert new is not None and new.seq == 1
    assert [e.id for e in store.history()] == [new.id, *legacy]
    marks = sorted(p.name.partition("-")[0] for p in (mr.archive_dir / storemod.ORDER_DIR).iterdir())
    assert marks == ["0", "0", "0", "1"]  # legacy entries got a mark on the next change


def test_order_marks_that_disagree_with_the_manifests_are_overruled(mailroot, frozen_now):
    mr = MailRoot(mailroot, is_sandbox=True)
    store = storemod.Store(mr)
    ids = [store.apply("settings", {"server.tab": b"# %d\n" % n}).id for n in range(3)]
    order = mr.archive_dir / storemod.ORDER_DIR
    (order / f"1-{ids[0]}").rename(order / f"99-{ids[0]}")  # the oldest made to look newest
    assert [e.id for e in store.history()] == ids[::-1]
    assert store.entry(None).id == ids[2]


@pytest.mark.parametrize("moved", [-YEAR, 11 * YEAR], ids=["not-valid-yet", "expired"])
def test_practice_ca_not_valid_at_the_clock_is_renewed_not_used(moved, mailroot, tmp_path, frozen_now):
    mr = str(mailroot)
    assert run("csr", "--mailroot", mr, *CSR_ARGS).code == 0
    assert run("practice-ca", "sign", "--mailroot", mr).code == 0
    old_root = (mailroot / "sslconf" / "practice-ca" / "issued" / "root.crt").read_bytes()
    at = frozen_now + moved
    with clock.frozen(at):
        r = run("practice-ca", "sign", "--mailroot", mr, "--json")
        assert r.code == 0, r.err
        files = r.json["files"]
        server, intermediate, root = Path(files["server"]), Path(files["intermediate"]), Path(files["root"])
        assert root.read_bytes() != old_root  # a new CA
        for pem in (server, intermediate, root):
            cert = x509.load_pem_x509_certificate(pem.read_bytes())
            assert cert.not_valid_before_utc <= at <= cert.not_valid_after_utc
        # openssl agrees: the chain verifies at the time of the moved clock.
        openssl = shutil.which("openssl")
        if openssl:
            done = subprocess.run([openssl, "verify", "-attime", str(int(at.timestamp())),
                                   "-CAfile", str(root), "-untrusted", str(intermediate), str(server)],
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
        # And the install accepts it under that clock.
        r = run("install", "--mailroot", mr, "--cert", str(server), "--chain", str(intermediate))
        assert r.code == 0, r.err
    # The CA that was replaced is in the archive.
    entries = [e for e in storemod.Store(MailRoot(mailroot, is_sandbox=True)).history() if e.action == "practice-ca"]
    assert entries[0].files.get("sslconf/practice-ca/root.key")

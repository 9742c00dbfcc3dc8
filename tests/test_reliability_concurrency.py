"""Eight writers at once on one MailRoot, in separate processes: nothing lost.

Each round starts, at the same instant, four `xmailnb settings --set` runs
(each a different variable), two `xmailnb install` runs (different
certificates, each adding a different CA to certs.pem), one `xmailnb csr`
and one `xmailnb rollback --to` an earlier CSR, plus two checklist ticks as
the dashboard makes them (the widget calls the same core function).  The
writers queue on the lock; afterwards every change that reported success is
on disk (every variable, both CAs in certs.pem, every tick), every exit
status is 0, the key and certificate belong together, the pending key
belongs to the pending CSR, and the archive and the audit log agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import pki
from helpers import CSR_ARGS, sandbox_copy
from xmailnb.flows import actions
from xmailnb.pki import keys
from xmailnb.mailroot.layout import MailRoot
from xmailnb.mailroot.servertab import ServerTab
from xmailnb.mailroot.store import Store

pytestmark = pytest.mark.slow  # many writer processes at once

ROUNDS = 2
SETTINGS = ("SSLUseCertsFile", "EnablePOP3-TLS", "SSLWantVerify", "EnableCTRL-TLS")


def _spawn(argv: list[str], env: dict[str, str], start: float) -> subprocess.Popen:
    # Every writer sleeps until the same instant, so they really collide
    # (their start-up time is not part of the race).
    code = textwrap.dedent(f"""
        import sys, time
        time.sleep(max(0.0, {start} - time.time()))
        from xmailnb.cli.main import main
        sys.exit(main(sys.argv[1:]))
    """)
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _tick(path: Path, item: str, env: dict[str, str], start: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import time, pathlib
        time.sleep(max(0.0, {start} - time.time()))
        from xmailnb.flows import actions
        from xmailnb.mailroot.resolve import resolve
        actions.tick_checklist(resolve({str(path)!r}), {item!r}, True)
    """)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    files = tmp_path_factory.mktemp("material")
    out = []
    for r in range(ROUNDS):
        pair = []
        for i in range(2):
            h = pki.hierarchy()
            for name, data in (("chain", h.chain_pem), ("key", h.leaf.key_pem()), ("ca", h.root.pem)):
                (files / f"{name}{r}{i}.pem").write_bytes(data)
            pair.append({"chain": files / f"chain{r}{i}.pem", "key": files / f"key{r}{i}.pem",
                         "ca": files / f"ca{r}{i}.pem", "root": h.root.cert, "leaf": h.leaf.cert})
        out.append(pair)
    return out


def test_eight_way_mixed_writers_lose_nothing(material, tmp_path):
    target = tmp_path / "MailRoot"
    sandbox_copy(target)
    mr = MailRoot(target)
    env = {**os.environ, "XMAILNB_LANG": "en", "XMAILNB_LOCK_WAIT": "120"}
    # An earlier CSR to roll back to while other writers run.
    actions.create_csr(mr, _request())
    second = actions.create_csr(mr, _request())
    earlier = second.entry
    assert earlier is not None

    for r, pair in enumerate(material):
        start = time.time() + 3.0
        values = {name: str((r + i) % 2) for i, name in enumerate(SETTINGS)}
        procs = {f"settings {name}": _spawn(["settings", "--mailroot", str(target), "--set", f"{name}={v}"],
                                            env, start)
                 for name, v in values.items()}
        for i, files in enumerate(pair):
            procs[f"install {i}"] = _spawn(["install", "--mailroot", str(target), "--cert", str(files["chain"]),
                                            "--key", str(files["key"]), "--ca", str(files["ca"]),
                                            "--allow-incomplete-chain"], env, start)
        procs["csr"] = _spawn(["csr", "--mailroot", str(target), *CSR_ARGS], env, start)
        procs["rollback"] = _spawn(["rollback", "--mailroot", str(target), "--to", earlier.id], env, start)
        items = actions.CHECKLIST[2 * (r % 2): 2 * (r % 2) + 2]
        for item in items:
            procs[f"tick {item}"] = _tick(target, item, env, start)
        results = {name: (p.wait(180), *p.communicate()) for name, p in procs.items()}
        for name, (code, _out, err) in results.items():
            assert code == 0, f"round {r}: {name} exited {code}: {err}"
            assert "Traceback" not in err

        # Every settings change is there (none overwritten by another).
        tab = ServerTab.parse((target / "server.tab").read_bytes())
        for name, value in values.items():
            assert tab.get(name) == value, f"round {r}: the change of {name} was lost"
        # certs.pem kept every CA added in this round and the earlier ones.
        in_pem = {c.fingerprint(c.signature_hash_algorithm) for c in
                  x509.load_pem_x509_certificates((target / "certs.pem").read_bytes())}
        for past in material[: r + 1]:
            for files in past:
                assert files["root"].fingerprint(files["root"].signature_hash_algorithm) in in_pem, \
                    f"round {r}: a CA added to certs.pem was lost"
        # Both ticks of the round are kept (and those of earlier rounds).
        ticked = actions.read_checklist(mr)
        for rr in range(r + 1):
            assert set(actions.CHECKLIST[2 * (rr % 2): 2 * (rr % 2) + 2]) <= set(ticked)
        # The installed pair belongs together and is one of the two.
        cert = x509.load_pem_x509_certificates((target / "server.cert").read_bytes())[0]
        key = serialization.load_pem_private_key((target / "server.key").read_bytes(), None)
        assert keys.public_key_matches(key, cert)
        assert cert in [files["leaf"] for files in pair]
        # The pending key belongs to the pending CSR, whoever came last.
        csr = x509.load_pem_x509_csr((target / "sslconf" / "server.csr").read_bytes())
        pending = serialization.load_pem_private_key((target / "sslconf" / "server.key").read_bytes(), None)
        assert keys.public_key_matches(pending, csr)

    store = Store(mr)
    history = store.history()
    ok = [rec for rec in store.audit_records() if rec.result == "ok"]
    assert len(ok) == len(history)
    ids = {e.id for e in history}
    assert all(rec.archive in ids for rec in ok)
    for entry in history:
        store.archived_bytes(entry)
    assert not [p for p in target.rglob("*") if p.name.endswith((".xmailnb-tmp", ".partial"))]
    assert not (target / "sslconf" / ".xmailnb-journal.json").exists()


def _request():
    from xmailnb.pki import csr as csrmod

    return csrmod.request_from_values({"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku",
                                       "org": "Example", "cn": "mail.example.jp"})


def test_concurrent_settings_in_process_threads_keep_every_change(tmp_path):
    """The dashboard's kernels and the command line in one MailRoot: the
    same core calls from several threads at once lose nothing either."""
    import threading

    target = tmp_path / "MailRoot"
    sandbox_copy(target)
    mr = MailRoot(target)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(SETTINGS))

    def writer(name: str) -> None:
        try:
            barrier.wait(10)
            actions.change_settings(mr, {name: "1"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in SETTINGS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    tab = ServerTab.parse((target / "server.tab").read_bytes())
    assert all(tab.get(name) == "1" for name in SETTINGS)

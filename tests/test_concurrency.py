"""Two writers at once: the second waits for the first, or (when it may not
wait) is told the MailRoot is busy.

Never a key from one and a certificate from the other; the archive and the
audit log stay consistent.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import pki
from helpers import sandbox_copy
from xmailnb.flows import actions
from xmailnb.pki import keys
from xmailnb.mailroot import store as storemod
from xmailnb.errors import BusyError
from xmailnb.mailroot.layout import MailRoot

pytestmark = pytest.mark.slow  # several processes at once

ROUNDS = 4


def _writer(path: str, chain_pem: bytes, key_pem: bytes, ready, go, result, wait: float) -> None:
    storemod.LOCK_WAIT = wait
    mr = MailRoot(Path(path))
    plan = actions.plan_install(mr, actions.Upload(chain_pem, "c"), key=actions.Upload(key_pem, "k"))
    real_write = storemod._write

    def slow_write(fh, data):
        # Hold the lock long enough that the other writer surely arrives.
        time.sleep(0.05)
        real_write(fh, data)

    storemod._write = slow_write
    ready.release()
    go.wait(30)
    try:
        actions.apply_install(mr, plan)
        result.put("ok")
    except BusyError:
        result.put("busy")
    except Exception as exc:  # pragma: no cover - reported by the assertion
        result.put(f"error {type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def rounds():
    """Two fresh server certificates per round: a writer whose pair is
    already installed has nothing to do and would never hold the lock."""
    h = pki.hierarchy()
    out = []
    for _ in range(ROUNDS):
        leaves = [h.intermediate.sign("mail.example.jp") for _ in range(2)]
        out.append([(leaf.pem + h.intermediate.pem, leaf.key_pem()) for leaf in leaves])
    return out


@pytest.mark.parametrize("wait,expected", [(0.0, ["busy", "ok"]), (20.0, ["ok", "ok"])],
                         ids=["no-wait", "queued"])
def test_two_processes_installing_at_once(rounds, tmp_path, wait, expected):
    target = tmp_path / "MailRoot"
    sandbox_copy(target)
    mr = MailRoot(target)
    ctx = mp.get_context("fork")
    outcomes = []
    for pairs in rounds:
        go = ctx.Event()
        ready = ctx.Semaphore(0)
        result = ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(str(target), chain, key, ready, go, result, wait))
                 for chain, key in pairs]
        for p in procs:
            p.start()
        for _ in procs:  # both have planned and wait at the start line
            assert ready.acquire(timeout=30)
        go.set()
        for p in procs:
            p.join(30)
        got = sorted(result.get(timeout=5) for _ in procs)
        outcomes.append(got)
        # Whoever won, the pair on disk belongs together.
        cert = x509.load_pem_x509_certificates((target / "server.cert").read_bytes())[0]
        key = serialization.load_pem_private_key((target / "server.key").read_bytes(), None)
        assert keys.public_key_matches(key, cert)
        assert (target / "server.cert").read_bytes() in [chain for chain, _key in pairs]
    assert all(o == expected for o in outcomes), outcomes

    store = storemod.Store(mr)
    history = store.history()
    ok_records = [r for r in store.audit_records() if r.result == "ok"]
    # Each write that succeeded archived exactly once.
    assert len(ok_records) == len(history) == ROUNDS * expected.count("ok")
    ids = {e.id for e in history}
    assert all(r.archive in ids for r in ok_records)
    for entry in history:
        store.archived_bytes(entry)  # every manifest matches its files
    assert not list(target.rglob("*.xmailnb-tmp"))

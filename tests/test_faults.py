"""Fault injection: every step of every MailRoot change fails in turn.

For each action (install, CSR generation, settings change, rollback) and each
seam of the store (temp-file creation, write, fsync, rename, unlink, lock),
the N-th call fails, for N = 1, 2, ... until the action no longer reaches it.
After every failure the MailRoot holds exactly the old state or exactly the
new one, no temp file or half-built archive entry is left, the lock is free,
and running the action again succeeds.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

import pki
from helpers import sandbox_copy, store_leftovers, user_view
from xmailnb.flows import actions
from xmailnb.pki import csr as csrmod
from xmailnb.pki import keys
from xmailnb.mailroot import store as storemod
from xmailnb.errors import XmailnbError
from xmailnb.mailroot.layout import MailRoot

pytestmark = pytest.mark.slow  # fault injection at every store step

SEAMS = ("_create", "_write", "_fsync", "_replace", "_unlink", "_mkdir")


def archive_count(mr: MailRoot) -> int:
    return len(storemod.Store(mr).history())


class Injector:
    """Make the n-th call of one store seam raise an OSError."""

    def __init__(self, monkeypatch, seam: str, n: int) -> None:
        self.calls = 0
        self.fired = False
        real = getattr(storemod, seam)

        def fake(*args, **kwargs):
            self.calls += 1
            if self.calls == n:
                self.fired = True
                raise OSError(28, "No space left on device (injected)")
            return real(*args, **kwargs)

        monkeypatch.setattr(storemod, seam, fake)


@pytest.fixture(scope="module")
def pki_material():
    h = pki.hierarchy()
    h2 = pki.hierarchy()
    return h, h2


def _prepared(tmp_path: Path, h, h2) -> MailRoot:
    """A MailRoot with an installed certificate and some history."""
    target = tmp_path / "MailRoot"
    sandbox_copy(target)
    mr = MailRoot(target)
    plan = actions.plan_install(mr, actions.Upload(h.chain_pem, "c"), key=actions.Upload(h.leaf.key_pem(), "k"))
    actions.apply_install(mr, plan)
    return mr


def _install_action(h2) -> Callable[[MailRoot], object]:
    def act(mr: MailRoot):
        plan = actions.plan_install(mr, actions.Upload(h2.chain_pem, "c2"),
                                    key=actions.Upload(h2.leaf.key_pem(), "k2"),
                                    ca=actions.Upload(h2.root.pem, "ca"))
        return actions.apply_install(mr, plan)
    return act


_CSR_KEY = keys.generate_private_key(keys.KeySpec())


def _csr_action(mr: MailRoot):
    request = csrmod.request_from_values({"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku",
                                          "org": "Example", "cn": "mail.example.jp", "aliases": "example.jp"})
    return actions.create_csr(mr, request, key=_CSR_KEY)


def _settings_action(mr: MailRoot):
    return actions.change_settings(mr, {"SSLUseCertsFile": "1", "EnablePOP3-TLS": "0"})


def _rollback_action(mr: MailRoot):
    return actions.rollback(mr)


ACTIONS = {
    "install": lambda h2: _install_action(h2),
    "csr": lambda h2: _csr_action,
    "settings": lambda h2: _settings_action,
    "rollback": lambda h2: _rollback_action,
}


@pytest.mark.parametrize("seam", SEAMS)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_failure_leaves_old_or_new_state(action, seam, pki_material, tmp_path, monkeypatch, frozen_now):
    h, h2 = pki_material
    act = ACTIONS[action](h2)

    # The state a successful run produces, on a copy.
    reference = _prepared(tmp_path / "ref", h, h2)
    before = user_view(reference.path)
    act(reference)
    after = user_view(reference.path)
    assert after != before

    failures = 0
    for n in range(1, 200):
        mr = _prepared(tmp_path / f"run{n}", h, h2)
        assert user_view(mr.path) == before
        entries = archive_count(mr)
        with monkeypatch.context() as m:
            injector = Injector(m, seam, n)
            try:
                act(mr)
                outcome = None
            except XmailnbError as exc:
                outcome = exc
        state = user_view(mr.path)
        assert state in (before, after), f"{action}: {seam} call {n} left a mixed state"
        assert store_leftovers(mr.path) == []
        if state == before:
            assert archive_count(mr) == entries  # nothing changed, no noise in history
            assert outcome is not None
            # The lock is free and the next run succeeds.
            act(mr)
            assert user_view(mr.path) == after
        else:
            assert archive_count(mr) == entries + 1
        if not injector.fired:
            break
        failures += 1
        shutil.rmtree(mr.path)
    else:
        pytest.fail("the action never completed without reaching the injected fault")
    print(f"fault-injection {action} {seam}: {failures} faults injected, none lost anything")
    if seam not in ("_unlink", "_mkdir"):
        assert failures >= 1, f"{seam} is never used by {action}"


def test_lock_failure_is_a_clear_refusal(pki_material, tmp_path, monkeypatch):
    h, h2 = pki_material
    mr = _prepared(tmp_path, h, h2)
    before = user_view(mr.path)

    def broken_flock(fd):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(storemod, "_flock", broken_flock)
    with pytest.raises(XmailnbError) as err:
        _settings_action(mr)
    assert err.value.msg.key == "store.lock_failed"
    assert user_view(mr.path) == before

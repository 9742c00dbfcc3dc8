"""kill -9 at every step of every change, then one more command.

Each action that changes a MailRoot (install with a CA for certs.pem, CSR,
settings, rollback, checklist tick, practice CA) runs in a forked child that
is killed with SIGKILL right before its N-th file-system step (temp-file
creation, write, fsync, rename, unlink, mkdir), for N = 1, 2, ... until the
action completes without reaching N.  Then one ordinary command runs (the
diagnosis, or any write), and:

- server.key and server.cert belong together (same public key);
- the MailRoot is exactly the old state or exactly the new one;
- no journal, temp file or half-built archive entry is left;
- the archive has one more entry exactly when the new state won.

The recovery itself is then killed at each of its steps, and repaired by the
next command.  A separate test aims real SIGKILLs at the system calls of the
command line with strace, as an outside attacker would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import pki
from helpers import run, sandbox_copy, store_leftovers, user_view
from xmailnb.files import sha256_hex
from xmailnb.flows import actions, practice
from xmailnb.pki import csr as csrmod
from xmailnb.pki import keys
from xmailnb.mailroot import store as storemod
from xmailnb.mailroot.layout import MailRoot
from xmailnb.mailroot.store import recover_interrupted

pytestmark = pytest.mark.slow  # kills processes at every step (strace)

SEAMS = ("_create", "_write", "_fsync", "_replace", "_unlink", "_mkdir")
KILLS: dict[str, int] = {}


def pair_ok(root: Path) -> bool:
    cert, key = root / "server.cert", root / "server.key"
    if not cert.exists() or not key.exists():
        return cert.exists() == key.exists()
    leaf = x509.load_pem_x509_certificates(cert.read_bytes())[0]
    return keys.public_key_matches(serialization.load_pem_private_key(key.read_bytes(), None), leaf)


def killed_at(act: Callable[[], object], n: int) -> tuple[bool, int]:
    """Run *act* in a forked child killed right before its n-th store step.

    Returns (whether the kill happened, how many steps it made).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_fd)
        calls = [0]
        for seam in SEAMS:
            real = getattr(storemod, seam)

            def wrapped(*args, _real=real, **kwargs):
                calls[0] += 1
                if calls[0] == n:
                    os.kill(os.getpid(), signal.SIGKILL)
                return _real(*args, **kwargs)

            setattr(storemod, seam, wrapped)
        try:
            act()
        except BaseException:  # pragma: no cover - reported by the parent
            os._exit(3)
        os.write(write_fd, str(calls[0]).encode())
        os._exit(0)
    os.close(write_fd)
    _pid, status = os.waitpid(pid, 0)
    data = os.read(read_fd, 64)
    os.close(read_fd)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True, n - 1
    assert os.WEXITSTATUS(status) == 0, f"the action failed without a kill (status {status})"
    return False, int(data or b"0")


@pytest.fixture(scope="module")
def material():
    h, h2 = pki.hierarchy(), pki.hierarchy()
    return h, h2


@pytest.fixture(scope="module")
def template(tmp_path_factory, material):
    """A sandbox copy with a certificate installed, a pending CSR, a tick
    and some history: every action has something to replace."""
    h, _h2 = material
    target = tmp_path_factory.mktemp("template") / "MailRoot"
    sandbox_copy(target)
    mr = MailRoot(target, is_sandbox=True)
    actions.apply_install(mr, actions.plan_install(mr, actions.Upload(h.chain_pem, "c"),
                                                   key=actions.Upload(h.leaf.key_pem(), "k")))
    actions.create_csr(mr, _request(), key=_CSR_KEY)
    practice.sign_pending_csr(mr)  # the practice CA exists: re-signing makes no keys
    actions.tick_checklist(mr, "send", True)
    return target


_CSR_KEY = keys.generate_private_key(keys.KeySpec())
_CSR_KEY2 = keys.generate_private_key(keys.KeySpec())


def _request():
    return csrmod.request_from_values({"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku",
                                       "org": "Example", "cn": "mail.example.jp", "aliases": "example.jp"})


def _actions(material) -> dict[str, Callable[[MailRoot], Callable[[], object]]]:
    """Action name -> (MailRoot -> a callable that does it; planned beforehand)."""
    _h, h2 = material

    def install(mr):
        plan = actions.plan_install(mr, actions.Upload(h2.chain_pem, "c2"), key=actions.Upload(h2.leaf.key_pem(), "k2"),
                                    ca=actions.Upload(h2.root.pem, "ca"))
        return lambda: actions.apply_install(mr, plan)

    return {
        "install": install,
        "csr": lambda mr: lambda: actions.create_csr(mr, _request(), key=_CSR_KEY2),
        "settings": lambda mr: lambda: actions.change_settings(mr, {"SSLUseCertsFile": "1", "EnablePOP3-TLS": "0"}),
        "rollback": lambda mr: lambda: actions.rollback(mr),
        "checklist": lambda mr: lambda: actions.tick_checklist(mr, "validate", True),
        "practice-ca": lambda mr: lambda: practice.sign_pending_csr(mr),
    }


def _fresh(template: Path, where: Path) -> MailRoot:
    if where.exists():
        shutil.rmtree(where)
    shutil.copytree(template, where, symlinks=True)
    return MailRoot(where, is_sandbox=True)


NEXT_COMMANDS = ("diagnose", "history", "settings")
ACTION_NAMES = ("install", "csr", "settings", "rollback", "checklist", "practice-ca")


@pytest.mark.parametrize("action", ACTION_NAMES)
def test_kill_at_every_step_then_one_command(action, material, template, tmp_path, frozen_now):
    make = _actions(material)[action]
    # The state a complete run leaves (a practice certificate has a random
    # serial, so that one is judged by which files changed instead).
    ref = _fresh(template, tmp_path / "ref")
    before = user_view(ref.path)
    entries_before = len(storemod.Store(ref).history())
    make(ref)()
    after = user_view(ref.path)
    assert after != before

    kills = 0
    for n in range(1, 500):
        mr = _fresh(template, tmp_path / "run")
        act = make(mr)
        fired, _steps = killed_at(act, n)
        # One more command of any kind: the diagnosis, the history or the
        # settings, in turn (each must repair first).
        command = NEXT_COMMANDS[n % len(NEXT_COMMANDS)]
        r = run(command, "--mailroot", str(mr.path), "--json")
        assert r.code in (0, 1), r.err
        state = user_view(mr.path)
        assert pair_ok(mr.path), f"{action}: kill before step {n} left a mismatched pair"
        assert store_leftovers(mr.path) == [], f"{action}: kill before step {n} left {store_leftovers(mr.path)}"
        history = storemod.Store(mr).history()
        if action == "practice-ca":
            changed = {rel for rel in set(before) | set(state) if before.get(rel) != state.get(rel)}
            expected = {rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel)}
            assert changed in (set(), expected), f"{action}: kill before step {n} left a mixed state {changed}"
            new_state = bool(changed)
        else:
            assert state in (before, after), f"{action}: kill before step {n} left a mixed state"
            new_state = state == after
        assert len(history) == entries_before + (1 if new_state else 0)
        for entry in history:
            storemod.Store(mr).archived_bytes(entry)  # every manifest matches its copies
        if not fired:
            break
        kills += 1
    else:
        pytest.fail("the action never completed")
    KILLS[action] = kills
    print(f"crash {action}: killed at {kills} steps, each repaired by the next command")
    assert kills >= 10


def test_recovery_itself_killed_at_every_step(material, template, tmp_path):
    """Kill the install between the two renames (the pair is split on disk),
    then kill the recovery at each of its steps; the next command repairs."""
    make = _actions(material)["install"]
    ref = _fresh(template, tmp_path / "ref")
    before = user_view(ref.path)
    make(ref)()
    after = user_view(ref.path)

    split = _split_step(make, template, tmp_path, before, after)

    kills = 0
    for m in range(1, 200):
        mr = _fresh(template, tmp_path / "run")
        assert killed_at(make(mr), split)[0]
        fired, _ = killed_at(lambda mr=mr: recover_interrupted(mr), m)
        assert run("history", "--mailroot", str(mr.path)).code == 0
        assert pair_ok(mr.path)
        assert user_view(mr.path) in (before, after)
        assert store_leftovers(mr.path) == []
        if not fired:
            break
        kills += 1
    KILLS["recovery"] = kills
    print(f"crash recovery: killed at {kills} steps of the recovery, each repaired by the next command")
    assert kills >= 3


def _split_step(make, template: Path, tmp_path: Path, before, after) -> int:
    """The step before which a kill leaves server.cert new and server.key old."""
    for n in range(1, 200):
        mr = _fresh(template, tmp_path / "probe")
        assert killed_at(make(mr), n)[0]
        if sha256_hex((mr.path / "server.cert").read_bytes()) == after["server.cert"] and \
                sha256_hex((mr.path / "server.key").read_bytes()) == before["server.key"]:
            assert not pair_ok(mr.path)  # without recovery, XMail would see this
            return n
    raise AssertionError("no step leaves the pair split: the test lost its target")


def test_next_write_also_recovers_first(material, template, tmp_path):
    # A write (not only the diagnosis) finds the interrupted change first.
    make = _actions(material)["install"]
    ref = _fresh(template, tmp_path / "ref")
    before = user_view(ref.path)
    make(ref)()
    split = _split_step(make, template, tmp_path, before, user_view(ref.path))
    mr = _fresh(template, tmp_path / "run")
    assert killed_at(make(mr), split)[0]
    assert (mr.path / "sslconf" / ".xmailnb-journal.json").exists()
    r = run("settings", "--mailroot", str(mr.path), "--set", "SSLUseCertsFile=1")
    assert r.code == 0, r.err
    assert "interrupted change" in r.err
    assert pair_ok(mr.path) and store_leftovers(mr.path) == []
    assert b'"SSLUseCertsFile"\t"1"' in (mr.path / "server.tab").read_bytes()


# -- the command line under strace: real SIGKILLs at system calls ---------------------

STRACE = shutil.which("strace")


@pytest.mark.skipif(STRACE is None, reason="strace is not installed")
@pytest.mark.parametrize("syscall", ["renameat", "unlinkat", "fsync", "mkdirat"])
def test_cli_killed_by_strace_then_one_command(syscall, material, template, tmp_path):
    _h, h2 = material
    cert = tmp_path / "chain.pem"
    key = tmp_path / "key.pem"
    ca = tmp_path / "ca.pem"
    cert.write_bytes(h2.chain_pem)
    key.write_bytes(h2.leaf.key_pem())
    ca.write_bytes(h2.root.pem)
    ref = _fresh(template, tmp_path / "ref")
    before = user_view(ref.path)
    env = {**os.environ, "XMAILNB_LANG": "en"}
    argv = [sys.executable, "-m", "xmailnb", "install", "--cert", str(cert), "--key", str(key), "--ca", str(ca)]
    done = subprocess.run([*argv, "--mailroot", str(ref.path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = user_view(ref.path)
    kills = 0
    # Every rename, unlink and mkdir; every third fsync (there are ~20, and
    # the in-process test above already kills before each of them).
    step = 3 if syscall == "fsync" else 1
    for n in range(1, 60, step):
        mr = _fresh(template, tmp_path / "run")
        proc = subprocess.run([STRACE, "-f", "-qq", "-o", os.devnull,
                               "-e", f"inject={syscall}:signal=SIGKILL:when={n}",
                               *argv, "--mailroot", str(mr.path)], env=env, capture_output=True, text=True)
        killed = proc.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)
        nxt = subprocess.run([sys.executable, "-m", "xmailnb", "diagnose", "--mailroot", str(mr.path)],
                             env=env, capture_output=True, text=True)
        assert "Traceback" not in nxt.stderr + nxt.stdout
        assert pair_ok(mr.path), f"{syscall} #{n}: mismatched pair"
        assert user_view(mr.path) in (before, after), f"{syscall} #{n}: mixed state"
        assert store_leftovers(mr.path) == [], f"{syscall} #{n}: leftovers"
        if not killed:
            assert proc.returncode == 0, proc.stderr
            break
        kills += 1
    KILLS[f"strace-{syscall}"] = kills
    print(f"strace {syscall}: {kills} SIGKILLs, each repaired by the next command")
    if syscall in ("renameat", "fsync"):
        assert kills >= 4  # the journal, the archive entry and each file

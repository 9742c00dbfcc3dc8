"""A sandbox reset killed at any of its steps, then one more command.

The reset runs in a forked child killed with SIGKILL right before its N-th
file-system call (open, mkdir, rename, replace, unlink, chmod, fsync), for
N = 1, 2, ... until it completes.  Then one ordinary command runs on the
default sandbox, and:

- no half-built ``.sandbox-new-*`` folder and no reset journal is left;
- the sandbox is exactly the old one (same files, same generation) or the
  fresh one with the next generation, the old one whole in the archive;
- the generation never goes back (a kill between the two renames used to
  leave no sandbox, and the next command made one with generation 0).
"""

from __future__ import annotations

import builtins
import io
import os
import shutil
import signal
from pathlib import Path

import pytest

from helpers import run, tree
from xmailnb.mailroot import sandbox
from xmailnb.mailroot.layout import sandbox_path
from xmailnb.mailroot.resolve import resolve

pytestmark = pytest.mark.slow  # forks and kills

CALLS = ("open", "mkdir", "rename", "replace", "unlink", "chmod", "fsync", "rmdir")


def _killed_reset(box: Path, n: int) -> bool:
    """Reset *box* in a child killed right before its n-th call; whether the kill happened."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        count = [0]

        def wrap(real):
            def wrapped(*args, **kwargs):
                count[0] += 1
                if count[0] == n:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)
            return wrapped

        for name in CALLS:
            setattr(os, name, wrap(getattr(os, name)))
        builtins.open = io.open = wrap(io.open)
        try:
            sandbox.reset_sandbox(box)
        except BaseException:  # pragma: no cover - reported by the parent
            os._exit(3)
        os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"the reset failed without a kill (status {status})"
    return False


def test_reset_killed_at_every_step_then_one_command(tmp_path):
    data = sandbox_path().parent
    box = resolve(None).path
    assert run("settings", "--set", "SSLUseCertsFile=1").code == 0
    assert sandbox.reset_sandbox(box).generation.number == 1
    assert run("settings", "--set", "SSLUseCertsFile=1").code == 0  # something to tell it apart
    template = tmp_path / "template"
    shutil.copytree(data, template, symlinks=True)
    old = tree(box)

    kills = 0
    for n in range(1, 2000):
        shutil.rmtree(data)
        shutil.copytree(template, data, symlinks=True)
        fired = _killed_reset(box, n)
        r = run("history", "--json")  # the default sandbox, as a trainee would
        assert r.code == 0, r.err
        left = sorted(p.name for p in data.iterdir() if p.name.startswith(".sandbox-new-") or ".reset.json" in p.name)
        assert left == [], f"kill before call {n} left {left}"
        number = sandbox.generation(box).number
        archived = sorted((data / sandbox.ARCHIVE_DIRNAME).iterdir())
        if number == 1:
            assert tree(box) == old, f"kill before call {n}: the old sandbox changed"
            assert len(archived) == 1
        else:
            assert number == 2, f"kill before call {n}: generation {number}"
            assert (box / "server.tab").read_bytes() != (template / box.name / "server.tab").read_bytes()
            assert len(archived) == 2
            assert tree(archived[-1]) == old, f"kill before call {n}: the old sandbox is not whole in the archive"
        if not fired:
            break
        kills += 1
    else:
        pytest.fail("the reset never completed")
    print(f"sandbox reset: killed at {kills} steps, each repaired by the next command")
    assert kills >= 18


def test_leftovers_of_an_earlier_version_are_removed():
    box = resolve(None).path
    stale = box.parent / ".sandbox-new-abc123"
    (stale / "sslconf").mkdir(parents=True)
    (stale / "sslconf" / "server.key").write_bytes(b"half-built")
    assert run("history").code == 0
    assert not stale.exists()
    assert (box / "server.tab").is_file()

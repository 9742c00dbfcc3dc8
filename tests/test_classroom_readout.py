"""A trainee's server reads its sandbox's progress in a short-lived child
process (:mod:`xmailnb.classroom.readout`), so that the progress rule and
cryptography do not stay loaded in every trainee's server (figure 7b of
docs/performance.md), and the board still gets the same report.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aio import run_async
from helpers import sandbox_copy
from xmailnb.classroom import singleuser
from xmailnb.classroom.readout import snapshot
from xmailnb.flows import actions
from xmailnb.i18n import text
from xmailnb.mailroot.resolve import resolve
from xmailnb.pki import csr as csrmod

#: What a trainee's server must not hold for its whole life.
HEAVY = ("cryptography", "xmailnb.checks.progress", "xmailnb.classroom.roster", "filelock")


@pytest.fixture
def sandbox(tmp_path):
    return resolve(sandbox_copy(tmp_path / "data" / "sandbox-MailRoot"))


def _make_csr(mr) -> None:
    request = csrmod.request_from_values({"country": "JP", "state": "Tokyo", "locality": "Minato-ku",
                                          "org": "Class", "cn": "mail.example.jp"})
    actions.create_csr(mr, request)


def test_a_trainee_server_loads_neither_cryptography_nor_the_progress_rule(sandbox):
    # A fresh interpreter, as JupyterHub starts the server; a reset the board
    # asks for happens in the server itself.
    script = (
        "import json, sys\n"
        "import xmailnb.classroom.singleuser\n"
        "from xmailnb.mailroot.resolve import resolve\n"
        "from xmailnb.mailroot.sandbox import reset_sandbox\n"
        f"reset_sandbox(resolve(sys.argv[1]).path, by='trainer')\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", script, str(sandbox.path)], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


def test_the_server_reports_what_the_progress_rule_says(sandbox, frozen_now):
    server = singleuser.Sandbox(sandbox)
    assert run_async(server.progress()) == snapshot(sandbox)
    _make_csr(sandbox)
    report = run_async(server.progress())
    assert report == snapshot(sandbox) and report["steps"]["csr"] == "done"


def test_a_reading_that_fails_says_so_and_keeps_the_last_reading(sandbox):
    server = singleuser.Sandbox(sandbox)
    first = run_async(server.progress())
    assert first["steps"]["csr"] == "todo"
    _make_csr(sandbox)
    server.read_seconds = 0.001  # the child cannot even start in that time
    failed = run_async(server.progress())
    problem = failed["problems"][0]
    assert problem["status"] == "error"
    assert problem["message"] == {"en": text("classroom.progress.unreadable", "en"),
                                  "ja": text("classroom.progress.unreadable", "ja")}
    assert failed["steps"] == first["steps"] and failed["problems"][1:] == first["problems"]
    # Tried again at the next ask: the CSR shows.
    server.read_seconds = singleuser.READ_SECONDS
    again = run_async(server.progress())
    assert again["steps"]["csr"] == "done"
    assert all(p["check"] != "classroom.progress.unreadable" for p in again["problems"])


def test_a_reading_over_its_size_budget_is_refused(sandbox):
    with pytest.raises(singleuser.ReadoutError):
        run_async(singleuser.read_progress(sandbox.path, max_bytes=100))
    server = singleuser.Sandbox(sandbox)
    server.read_max_bytes = 100
    report = run_async(server.progress())  # never the crash of the board's read
    assert report["problems"][0]["check"] == "classroom.progress.unreadable" and report["generation"] == 0

"""`xmailnb sandbox --reset`: a fresh practice sandbox, never anything else."""

from __future__ import annotations

import io
import os
import time

import pytest

from helpers import CSR_ARGS, run, tree
from xmailnb.mailroot import sandbox
from xmailnb.errors import BusyError, InputError
from xmailnb.mailroot.layout import SANDBOX_MARKER, sandbox_path
from xmailnb.mailroot.sandbox import create_sandbox
from xmailnb.mailroot.store import Store


def _box():
    return create_sandbox(sandbox_path())


def test_reset_archives_the_old_sandbox_and_counts_a_generation(tmp_path):
    box = _box()
    assert run("csr", *CSR_ARGS).code == 0
    before = tree(box.path)
    key_mode = os.stat(box.pending_key).st_mode & 0o777
    result = run("sandbox", "--reset", "--yes", "--json")
    assert result.code == 0, result.err
    doc = result.json
    assert doc["generation"]["number"] == 1 and doc["generation"]["by"] == "self"
    archived = doc["archived"]
    # Nothing lost: the old sandbox, byte for byte, keys still private.
    assert tree(type(box.path)(archived)) == before
    assert os.stat(os.path.join(archived, "sslconf", "server.key")).st_mode & 0o777 == key_mode == 0o600
    # A fresh one in the same place: no CSR, the marker, a server.tab.
    assert not box.pending_csr.exists() and box.server_tab.is_file()
    assert box.path.joinpath(*SANDBOX_MARKER.split("/")).is_file()
    assert sandbox.generation(box.path).number == 1
    assert run("sandbox", "--reset", "--yes").code == 0
    assert sandbox.generation(box.path).number == 2
    assert len(os.listdir(sandbox.archive_folder(box.path))) == 2


def test_reset_of_a_missing_sandbox_creates_one():
    assert not sandbox_path().exists()
    result = run("sandbox", "--reset", "--yes")
    assert result.code == 0
    assert "no practice sandbox yet" in result.err
    assert (sandbox_path() / "server.tab").is_file()


def test_a_mailroot_that_is_not_the_sandbox_is_refused_and_untouched(tmp_path):
    live = tmp_path / "MailRoot"
    create_sandbox(live).path.joinpath(*SANDBOX_MARKER.split("/")).unlink()
    before = tree(live)
    result = run("sandbox", "--reset", "--yes", "--mailroot", str(live))
    assert result.code == 1
    assert "not the practice sandbox" in result.err and "XMAILNB_DATA_DIR" in result.err
    assert tree(live) == before
    # The core refuses it too, even when named directly.
    with pytest.raises(InputError) as err:
        sandbox.reset_sandbox(live)
    assert err.value.msg.key == "sandbox.not_sandbox"
    assert tree(live) == before


def test_mail_root_is_never_reset(tmp_path, monkeypatch):
    live = tmp_path / "MailRoot"
    create_sandbox(live).path.joinpath(*SANDBOX_MARKER.split("/")).unlink()
    monkeypatch.setenv("MAIL_ROOT", str(live))
    before = tree(live)
    _box()
    result = run("sandbox", "--reset", "--yes")
    assert result.code == 0
    assert "MAIL_ROOT" in result.err and "not touched" in result.err
    assert tree(live) == before


def test_a_symlinked_sandbox_is_refused(tmp_path):
    elsewhere = create_sandbox(tmp_path / "other")  # even one with the marker
    before = tree(elsewhere.path)
    sandbox_path().parent.mkdir(parents=True, exist_ok=True)
    os.symlink(elsewhere.path, sandbox_path())
    result = run("sandbox", "--reset", "--yes")
    assert result.code == 1 and "symbolic link" in result.err
    assert tree(elsewhere.path) == before and os.path.islink(sandbox_path())


def test_a_symlinked_marker_or_archive_is_refused(tmp_path):
    box = _box()
    marker = box.path.joinpath(*SANDBOX_MARKER.split("/"))
    outside = tmp_path / "marker.txt"
    outside.write_text("x")
    marker.unlink()
    os.symlink(outside, marker)
    with pytest.raises(InputError) as err:
        sandbox.reset_sandbox(box.path)
    assert err.value.msg.key == "sandbox.not_sandbox"
    marker.unlink()
    marker.write_text("sandbox")
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, sandbox.archive_folder(box.path))
    with pytest.raises(InputError) as err:
        sandbox.reset_sandbox(box.path)
    assert err.value.msg.key == "sandbox.archive_symlink"
    assert list(target.iterdir()) == [] and box.server_tab.is_file()


def test_confirmation_is_asked_and_no_means_no(monkeypatch):
    box = _box()
    before = tree(box.path)
    result = run("sandbox", "--reset")  # no terminal in the test: refuse, do not guess
    assert result.code == 2 and "--yes" in result.err
    assert tree(box.path) == before

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    result = run("sandbox", "--reset")
    assert result.code == 1 and "left as it was" in result.err
    assert tree(box.path) == before
    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    assert run("sandbox", "--reset").code == 0
    assert sandbox.generation(box.path).number == 1


def test_messages_in_japanese():
    _box()
    result = run("sandbox", "--reset", "--lang", "ja")
    assert result.code == 2 and "確認" in result.err
    result = run("sandbox", "--lang", "ja")
    assert "練習用サンドボックス" in result.out


@pytest.mark.slow
def test_a_busy_sandbox_is_not_reset():
    box = _box()
    with Store(box).lock():
        with pytest.raises(BusyError):
            sandbox.reset_sandbox(box.path)
    assert sandbox.generation(box.path).number == 0


@pytest.mark.parametrize("value,expected", [
    ("smtp=30025,pop3s=30995", {"smtp": 30025, "pop3s": 30995}),
    ("pop3s=40001", {"smtp": 0, "pop3s": 40001}),
    ("smtp=99999,pop3s=x", {"smtp": 0, "pop3s": 0}),
    ("", {"smtp": 0, "pop3s": 0}),
])
def test_practice_ports_from_the_environment(value, expected):
    assert sandbox.practice_ports({"XMAILNB_PRACTICE_PORTS": value}) == expected


def test_the_open_page_says_the_sandbox_was_reset():
    from xmailnb.ui import Wizard

    box = _box()
    assert run("csr", *CSR_ARGS).code == 0
    wizard = Wizard(lang="en")
    wizard.show("csr")
    notice = wizard.reset_notice
    assert notice.layout.display == "none"
    sandbox.reset_sandbox(box.path, by="trainer")
    deadline = time.monotonic() + 5  # the watcher polls once a second
    while notice.layout.display == "none" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert notice.layout.display is None
    assert "xm-reset-notice" in notice.value and "by your trainer" in notice.value
    wizard.set_lang("ja")
    assert "講師" in notice.value
    # The stepper re-read the fresh sandbox: the CSR step is to do again.
    assert "xm-state-todo" in wizard.nav["csr"]._dom_classes
    assert "xm-state-done" not in wizard.nav["csr"]._dom_classes
    notice.stop()


def test_a_live_mailroot_page_has_no_watcher(tmp_path):
    from xmailnb.ui import Wizard

    live = tmp_path / "MailRoot"
    create_sandbox(live).path.joinpath(*SANDBOX_MARKER.split("/")).unlink()
    wizard = Wizard(mailroot=str(live), lang="en")
    assert wizard.reset_notice.check() is False


def test_start_over_in_the_page_asks_first_then_gives_a_fresh_sandbox():
    from xmailnb.checks.progress import StepState
    from xmailnb.ui import Wizard

    box = _box()
    assert run("csr", *CSR_ARGS).code == 0
    wizard = Wizard(lang="en")
    wizard.show("csr")
    assert wizard.progress["csr"] is StepState.DONE
    before = tree(box.path)

    # Asking shows the question; Cancel leaves everything as it was.
    wizard.start_over.click()
    assert wizard.start_over_box.layout.display != "none"
    assert "fresh" in wizard.start_over_question.value.lower()
    wizard.start_over_cancel.click()
    assert wizard.start_over_box.layout.display == "none"
    assert tree(box.path) == before and sandbox.generation(box.path).number == 0

    # Yes: the old sandbox archived whole, a fresh one in its place, the page on step 1.
    wizard.start_over.click()
    wizard.start_over_yes.click()
    assert sandbox.generation(box.path).number == 1
    assert not box.pending_csr.exists()
    archived = list(sandbox.archive_folder(box.path).iterdir())
    assert len(archived) == 1 and (archived[0] / "sslconf" / "server.csr").is_file()
    assert wizard.current == "diagnose"
    assert wizard.progress["csr"] is StepState.TODO
    assert "xm-reset-notice" in wizard.reset_notice.value

"""Nothing outside the MailRoot is ever written, removed, read into the
archive or chmod-ed: tampered manifests and journals, and symbolic links
where the store's folders or files should be, are refused with a clear
message."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import pki
from helpers import run, sandbox_copy, tree
from xmailnb.mailroot.layout import MANAGED_FILES, MailRoot, is_managed
from xmailnb.mailroot.store import Store, sha256_hex


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Mode and content of everything below *root*, *root* too (links not followed)."""
    return tree(root, exclude=(), folders=True, meta=("mode",))


@pytest.fixture
def setup(tmp_path):
    h = pki.hierarchy()
    mailroot = tmp_path / "MailRoot"
    sandbox_copy(mailroot)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    (outside / "x").write_bytes(b"precious\n")
    (outside / "server.key").write_bytes(b"not yours\n")
    os.chmod(outside, 0o755)
    files = tmp_path / "in"
    files.mkdir()
    (files / "chain.pem").write_bytes(h.chain_pem)
    (files / "key.pem").write_bytes(h.leaf.key_pem())
    return MailRoot(mailroot), outside, files


def _install(mr: MailRoot, files: Path, *extra: str):
    return run("install", "--mailroot", str(mr.path), "--cert", str(files / "chain.pem"),
               "--key", str(files / "key.pem"), *extra)


def _entry_with(mr: MailRoot, files: Path, manifest_files: dict) -> str:
    """An archive entry whose manifest was edited to name *manifest_files*."""
    assert _install(mr, files).code == 0
    entry = Store(mr).history()[0]
    manifest = entry.path / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["files"] = manifest_files
    manifest.write_text(json.dumps(doc))
    return entry.id


HOSTILE = ["../outside/x", "../../outside/x", "/etc/passwd", "..\\outside\\x", "server.cert\0x",
           "sslconf/../../outside/x", "sslconf/archive/x", "./server.cert", "server.cert/", "", "C:/x",
           "domains.tab", "sslconf/.xmailnb.lock"]


@pytest.mark.parametrize("name", HOSTILE)
def test_tampered_manifest_is_refused(name, setup, tmp_path):
    mr, outside, files = setup
    entry_id = _entry_with(mr, files, {name: None, "server.cert": None})
    before_out, before_mr = snapshot(outside), snapshot(mr.path)
    for lang, word in (("en", "tampered"), ("ja", "改ざん")):
        r = run("rollback", "--mailroot", str(mr.path), "--to", entry_id, "--lang", lang, "--json")
        assert r.code == 1
        assert r.json["error"]["key"] == "store.archive.tampered"
        assert word in r.err
    assert snapshot(outside) == before_out
    assert snapshot(mr.path) == before_mr


def test_tampered_manifest_cannot_write_outside_with_content(setup):
    # The classic: a manifest naming ../outside/x with a matching copy.
    mr, outside, files = setup
    payload = b"attacker\n"
    entry_id = _entry_with(mr, files, {"../outside/x": sha256_hex(payload)})
    # Where a naive store would look for the copy: files/../outside/x.
    entry_dir = Store(mr).entry(entry_id).path
    (entry_dir / "files").mkdir(exist_ok=True)
    copy = entry_dir / "outside" / "x"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(payload)
    before = snapshot(outside)
    r = run("rollback", "--mailroot", str(mr.path), "--to", entry_id)
    assert r.code == 1
    assert snapshot(outside) == before
    assert (outside / "x").read_bytes() == b"precious\n"


def test_allow_list_holds_only_plain_relative_names():
    assert all(is_managed(rel) for rel in MANAGED_FILES)
    assert not any(is_managed(name) for name in HOSTILE)
    from xmailnb.flows import acme as acmeflow
    from xmailnb.flows import practice

    for module in (acmeflow, practice):
        for name, value in vars(module).items():
            if name.startswith("REL_") and name != "REL_DIR":
                assert is_managed(value), f"{module.__name__}.{name} is written but not in MANAGED_FILES"


@pytest.mark.parametrize("link", ["sslconf/archive", "sslconf"])
def test_symlinked_store_folder_is_refused(link, setup):
    mr, outside, files = setup
    if link == "sslconf/archive":
        (mr.path / "sslconf").mkdir(exist_ok=True)
    else:
        shutil.rmtree(mr.path / "sslconf")
    target = mr.file(link)
    if target.exists():
        shutil.rmtree(target)
    target.symlink_to(outside)
    before_out, before_mr = snapshot(outside), snapshot(mr.path)
    r = _install(mr, files, "--json")
    assert r.code == 1, r.err
    assert r.json["error"]["key"] == "store.unsafe.symlink"
    assert link in r.err and "symbolic link" in r.err
    assert snapshot(outside) == before_out  # no key copied out, no chmod
    after_mr = snapshot(mr.path)
    after_mr.pop("sslconf/.xmailnb.lock", None)  # the lock is taken before the refusal
    assert after_mr == before_mr
    assert not (mr.path / "server.key").exists()


def test_symlinked_practice_folder_is_refused(setup):
    from xmailnb.flows import practice

    mr, outside, files = setup
    mr = MailRoot(mr.path, is_sandbox=True)
    assert run("csr", "--mailroot", str(mr.path), "--country", "JP", "--state", "Tokyo", "--locality", "Shibuya",
               "--org", "Example", "--cn", "mail.example.jp").code == 0
    (mr.path / "sslconf" / "practice-ca").symlink_to(outside)
    before = snapshot(outside)
    with pytest.raises(Exception) as err:
        practice.sign_pending_csr(mr)
    assert err.value.msg.key == "store.unsafe.symlink"
    assert snapshot(outside) == before


@pytest.mark.parametrize("name", ["server.cert", "server.key", "server.tab"])
def test_symlinked_managed_file_is_not_replaced_or_copied(name, setup):
    mr, outside, files = setup
    victim = mr.path / name
    if victim.exists():
        victim.unlink()
    victim.symlink_to(outside / "server.key")
    before = snapshot(outside)
    if name == "server.tab":
        r = run("settings", "--mailroot", str(mr.path), "--set", "SSLUseCertsFile=1", "--json")
        assert r.code in (1, 2)
    else:
        r = _install(mr, files, "--json")
        assert r.code == 1
        assert r.json["error"]["key"] == "store.file.symlink"
    assert snapshot(outside) == before
    assert victim.is_symlink()
    assert not list((mr.path / "sslconf" / "archive").glob("*/files/*")) \
        if (mr.path / "sslconf" / "archive").exists() else True


def test_symlinked_lock_file_is_refused(setup):
    mr, outside, files = setup
    (mr.path / "sslconf").mkdir(exist_ok=True)
    lock = mr.path / "sslconf" / ".xmailnb.lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(outside / "x")
    before = snapshot(outside)
    r = _install(mr, files, "--json")
    assert r.code == 1
    assert r.json["error"]["key"] == "store.unsafe.symlink"
    assert snapshot(outside) == before


def test_symlinked_archive_entry_is_not_followed(setup):
    mr, outside, files = setup
    assert _install(mr, files).code == 0
    fake = mr.path / "sslconf" / "archive" / "20000101T000000000000Z"
    (outside / "files").mkdir()
    (outside / "manifest.json").write_text(json.dumps({"id": fake.name, "time": "t", "action": "install",
                                                       "files": {"server.key": sha256_hex(b"x")}}))
    fake.symlink_to(outside)
    before = snapshot(outside)
    r = run("rollback", "--mailroot", str(mr.path), "--to", fake.name, "--json")
    assert r.code == 1
    assert snapshot(outside) == before


def test_tampered_journal_is_cleared_not_obeyed(setup):
    mr, outside, files = setup
    assert _install(mr, files).code == 0
    journal = mr.path / "sslconf" / ".xmailnb-journal.json"
    (outside / ".x.20000101T000000000000Z.xmailnb-tmp").write_bytes(b"evil")
    journal.write_text(json.dumps({
        "version": 1, "id": "20000101T000000000000Z", "action": "install", "state": "commit",
        "files": {"../outside/x": {"old": None, "new": sha256_hex(b"evil"),
                                   "tmp": ".x.20000101T000000000000Z.xmailnb-tmp", "mode": 420, "owner": None}}}))
    before_out, before_cert = snapshot(outside), (mr.path / "server.cert").read_bytes()
    r = run("diagnose", "--mailroot", str(mr.path))
    assert "Traceback" not in r.err
    assert not journal.exists()
    assert snapshot(outside) == before_out
    assert (mr.path / "server.cert").read_bytes() == before_cert


@pytest.mark.parametrize("entry_id", ["../../outside", "/etc", "..", "20000101T000000000000Z/../..", "\x1b[2J"])
def test_rollback_to_hostile_id(entry_id, setup):
    mr, outside, files = setup
    assert _install(mr, files).code == 0
    before = snapshot(outside)
    r = run("rollback", "--mailroot", str(mr.path), "--to", entry_id, "--json")
    assert r.code == 1
    assert r.json["error"]["key"] == "store.history.unknown"
    assert "\x1b" not in r.err
    assert snapshot(outside) == before

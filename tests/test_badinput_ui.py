"""The bad-input corpus through the widget layer.

The same cases as tests/test_badinput.py, fed to the Install step as
uploads and to the CSR form as typed values: the same refusals (the same
catalog key, shown beside the input at fault), nothing written, and the
accepted cases accepted.
"""

from __future__ import annotations

import markupsafe
from pathlib import Path

import pytest

from test_badinput import CSR_CASES, INSTALL_CASES, Case, mailroot, material, prepare  # noqa: F401  (fixtures)
from helpers import tree
from xmailnb.ui import CsrStep, InstallStep
from xmailnb.ui.install import upload_value

UPLOADS = {"--cert": "cert", "--chain": "chain", "--key": "key", "--ca": "ca"}


def _pairs(argv: list[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    i = 1  # argv[0] is the command
    while i < len(argv):
        arg = argv[i]
        if "=" in arg and arg.startswith("--"):
            flag, value = arg.split("=", 1)
            out.append((flag, value))
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out.append((arg, argv[i + 1]))
            i += 2
        else:
            out.append((arg, None))
            i += 1
    return out


@pytest.mark.parametrize("case", INSTALL_CASES, ids=[c.name for c in INSTALL_CASES])
def test_install_step(case: Case, material, mailroot, tmp_path):  # noqa: F811
    argv = prepare(case, material, tmp_path)
    step = InstallStep(mailroot, lang="en")
    for flag, value in _pairs(argv):
        if flag in UPLOADS:
            path = Path(value)
            if not path.is_file():
                pytest.skip("an upload is always a file's content: missing files and folders cannot be chosen")
            step.uploads[UPLOADS[flag]].value = upload_value(path.read_bytes(), path.name)
        elif flag == "--passphrase-file":
            path = Path(value)
            if not path.is_file():
                pytest.skip("the dashboard takes the passphrase typed, not from a file")
            step.passphrase.value = path.read_bytes().split(b"\n", 1)[0].decode()
        elif flag == "--hostname":
            step.hostname.value = value
        elif flag == "--allow-incomplete-chain":
            step.allow_incomplete.value = True
    before = tree(mailroot)
    step.apply()
    if case.expect == "ok":
        assert "xm-ok" in step.message._dom_classes, step.message.value
        assert (mailroot / "server.cert").is_file()
        if case.check is not None:
            case.check(material, mailroot)
        return
    assert tree(mailroot) == before
    assert "xm-error" in step.message._dom_classes
    keys = [m.key for m in step.message.msgs]
    noted = [m.key for note in step.notes.values() for m in note.msgs]
    assert case.expect in keys + noted, (keys, noted)
    # A note beside an input says it as an error: every note with words, and only those.
    shown = {field for field, note in step.notes.items() if note.msgs}
    assert shown == {field for field, note in step.notes.items() if "xm-error" in note._dom_classes}


FIELDS = {"--country": "country", "--state": "state", "--locality": "locality", "--org": "org",
          "--unit": "unit", "--cn": "cn", "--aliases": "aliases", "--email": "email", "--memo": "memo"}


@pytest.mark.parametrize("case", CSR_CASES, ids=[c.name for c in CSR_CASES])
def test_csr_form(case: Case, mailroot, tmp_path):  # noqa: F811
    argv = case.build({}, tmp_path)
    values = dict(_pairs(argv))
    choices = [f for f in ("--key-type", "--key-size", "--curve") if f in values]
    if choices and case.expect != "ok":
        pytest.skip("the form offers key types, sizes and curves as a list of valid choices only")
    step = CsrStep(mailroot, lang="en")
    before = tree(mailroot)
    for flag, value in values.items():
        if flag in FIELDS:
            step.inputs[FIELDS[flag]].value = value or ""
    if case.expect == "ok":
        assert not step.generate_button.disabled
        assert not any("xm-invalid" in w._dom_classes for w in step.inputs.values())
        return
    # The field at fault is the one the case changed (written as --flag=value).
    changed = [a.split("=", 1)[0] for a in argv if a.startswith("--") and "=" in a]
    field = FIELDS[changed[0]]
    assert step.generate_button.disabled

    def flagged() -> list[str]:
        return [name for name, w in step.inputs.items() if "xm-invalid" in w._dom_classes]

    # A typed value is judged as it is typed; an empty required field is not
    # flagged before the user has typed anything (Generate stays disabled).
    assert flagged() == ([] if values[changed[0]] == "" else [field])
    # A click on a disabled button does nothing; calling it directly must
    # refuse too: the refusal shown, the field at fault flagged with the
    # reason beside it, and nothing written.
    assert step.generate() is None
    assert tree(mailroot) == before
    assert step.message.status == "error" and "xm-error" in step.message._dom_classes
    assert [m.key for m in step.message.msgs] == ["ui.csr.form_invalid"]
    assert str(markupsafe.escape(step.message.msgs[0].render("en"))) in step.message.value
    assert flagged() == [field]
    note = step.notes[field]
    assert note.status == "error", (field, note.status)
    assert note.msgs and note.msgs[0].key == case.expect, [m.key for m in note.msgs]
    assert str(markupsafe.escape(note.msgs[0].render("en"))) in note.value

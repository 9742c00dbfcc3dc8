"""The teaching notebooks run top to bottom on a sandbox MailRoot, and are
committed clean (no outputs, no execution counts, no saved widget state)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import tree
from xmailnb.mailroot.sandbox import create_sandbox

pytestmark = pytest.mark.slow  # runs every notebook in a kernel

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHIPPED = sorted((ROOT / "xmailnb" / "share").glob("*.ipynb"))
STEPS = ["00_start_here", "01_diagnose", "02_csr", "03_submit", "04_install", "05_settings", "06_probe",
         "07_notice", "dashboard"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_every_step_has_its_notebook():
    assert [p.stem for p in NOTEBOOKS] == STEPS


@pytest.mark.parametrize("path", NOTEBOOKS + SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_without_outputs(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in doc["metadata"]
    for cell in doc["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]
        assert "attachments" not in cell


@pytest.fixture(scope="module")
def mailroot(tmp_path_factory):
    return create_sandbox(tmp_path_factory.mktemp("nb") / "MailRoot").path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, mailroot, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("MAIL_ROOT", str(mailroot))
    monkeypatch.setenv("XMAILNB_LANG", "ja")
    before = tree(mailroot)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    last = code_cells[-1]
    if path.stem == "00_start_here":
        printed = "".join(o.get("text", "") for o in last.outputs)
        assert str(mailroot) in printed
    else:
        # the step's widget is what the notebook shows
        assert any(WIDGET_VIEW in o.get("data", {}) for o in last.outputs), last.outputs
    assert not any(o.get("output_type") == "error" for c in code_cells for o in c.outputs)
    # showing a step changes nothing in the MailRoot
    assert tree(mailroot) == before

"""What a notebook's first cell says: the earlier steps it needs, read with
the dashboard's own rule (progress.step_progress), at every point of the
course, and which notebook to open next."""

from __future__ import annotations

import pytest

from xmailnb.flows import actions
from xmailnb.notebook import guide
from xmailnb.i18n import Msg
from xmailnb.mailroot import create_sandbox
from xmailnb.checks.progress import STEPS, record_diagnosis, step_progress

from test_notebooks import install, make_csr, sign


@pytest.fixture
def mr(tmp_path):
    return create_sandbox(tmp_path / "MailRoot")


def _agrees_with_the_stepper(mr) -> None:
    states = step_progress(mr).states
    for step in STEPS:
        need = guide.require_steps(str(step), mr, lang="en")
        assert need.problem == []
        for item in need.items:
            assert item.state == str(states[item.step]), (step, item)
        required = [states[s] for s in guide.REQUIRES[str(step)]]
        assert need.ready == all(s in ("done", "attention") for s in required), (step, required)
    overview = guide.progress_overview(mr, lang="en")
    assert overview.states == {str(k): str(v) for k, v in states.items()}


def test_every_notebook_reads_the_steps_as_the_dashboard_does_along_the_course(mr):
    _agrees_with_the_stepper(mr)
    assert guide.progress_overview(mr).next_step == "diagnose"
    assert not guide.require_steps("install", mr).ready
    record_diagnosis(mr, where="notebook")
    _agrees_with_the_stepper(mr)
    assert guide.progress_overview(mr).next_step == "csr"
    make_csr(mr)
    _agrees_with_the_stepper(mr)
    assert guide.require_steps("submit", mr).ready and not guide.require_steps("install", mr).ready
    assert guide.progress_overview(mr).next_step == "submit"
    sign(mr)
    _agrees_with_the_stepper(mr)
    assert guide.require_steps("install", mr).ready
    install(mr)
    _agrees_with_the_stepper(mr)
    for step in ("settings", "probe", "notice"):
        assert guide.require_steps(step, mr).ready, step
    actions.rollback(mr)  # the install undone: server.cert and server.key removed
    _agrees_with_the_stepper(mr)
    assert step_progress(mr)["install"] == "broken"
    assert not guide.require_steps("probe", mr).ready
    assert guide.progress_overview(mr).next_step == "install"


def test_what_is_missing_is_said_in_the_notebooks_language_with_its_notebook(mr):
    need = guide.require_steps("install", mr, lang="ja")
    assert [r.step for r in need.missing] == ["csr", "submit"]
    text = need.render()
    assert "✖ 先に手順 2「秘密鍵と CSR」を済ませてください。02_csr.ipynb を開いて" in text
    assert need.render("en").startswith("✖ Do step 2 (Key and CSR) first: open 02_csr.ipynb")
    # The hint names the dashboard's own controls for getting a certificate.
    assert Msg.of("ui.submit.practice.sign").render("ja") in text


def test_a_recommended_step_is_a_warning_not_a_stop(mr):
    make_csr(mr)
    sign(mr)
    install(mr)
    need = guide.require_steps("notice", mr, lang="en")
    assert need.ready and [r.step for r in need.missing] == ["probe"]
    assert need.render().startswith(
        "⚠ Not done yet: step 6 (Check the server). Doing it first is recommended (06_probe.ipynb)")


def test_a_mailroot_that_cannot_be_used_is_said_not_raised(tmp_path):
    need = guide.require_steps("install", tmp_path / "nowhere", lang="en")
    assert not need.ready and need.problem and str(tmp_path / "nowhere") in need.render()
    overview = guide.progress_overview(tmp_path / "nowhere", lang="en")
    assert overview.problem and overview.next_step is None


def test_a_step_name_typo_in_a_notebook_is_a_programming_error(mr):
    with pytest.raises(ValueError, match="unknown step"):
        guide.require_steps("instal", mr)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_notebooks_use_the_dashboards_marks(lang):
    """"Not started" is the stepper's ○ in the guide and the notebooks' legend too."""
    import json
    from pathlib import Path

    from xmailnb.ui.wizard import _MARKS
    from xmailnb.checks.progress import StepState

    todo = _MARKS[StepState.TODO]
    assert Msg.of("guide.state.todo").render(lang).startswith(todo + " ")
    legend = Msg.of("guide.overview.legend").render(lang)
    assert all(mark in legend for mark in _MARKS.values()) and "–" not in legend
    start = Path(__file__).parents[1] / "notebooks" / "00_start_here.ipynb"
    prose = "".join("".join(c["source"]) for c in json.loads(start.read_text())["cells"] if c["cell_type"] == "markdown")
    not_started = {"en": f"{todo} not started yet", "ja": f"{todo} はまだ始めていない"}[lang]
    assert not_started in prose and "– " not in prose


def test_the_notebooks_mark_not_started_as_the_dashboard_does(mr):
    lines = guide.progress_overview(mr, lang="en").render().splitlines()
    assert "  Step 2 (Key and CSR): ○ not started (02_csr.ipynb)" in lines
    ja = guide.progress_overview(mr, lang="ja").render().splitlines()
    assert "  手順 2「秘密鍵と CSR」: ○ 未着手（02_csr.ipynb）" in ja

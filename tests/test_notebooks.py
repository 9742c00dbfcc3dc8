"""The teaching notebooks: committed clean, runnable on any sandbox, and a
course a trainee can follow from the first notebook to the last.

- every notebook runs top to bottom on a fresh sandbox without an error and
  without changing it; one opened before its earlier steps says "do step N
  first" and which notebook to open;
- the whole course runs on ONE sandbox, in order, with each step's action
  done between the notebooks the way a trainee does it (the form's work done
  through the core), so that every hand check runs on the state it is
  written for, and passes: ``openssl verify`` prints ``OK``, the key and
  certificate hashes agree, the running server's chain verifies, ...;
- the form and every message follow the notebook's ``LANG``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest

from helpers import LOCK, tree
from xmailnb.mailroot.layout import REL_PROGRESS_LOG
from xmailnb.notebook import guide
from xmailnb.i18n import Msg
from xmailnb.mailroot import create_sandbox

pytestmark = pytest.mark.slow  # runs every notebook in a kernel

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHIPPED = sorted((ROOT / "xmailnb" / "share").glob("*.ipynb"))
STEPS = ["00_start_here", "01_diagnose", "02_csr", "03_submit", "04_install", "05_settings", "06_probe",
         "07_notice", "dashboard"]
TEACHING = [p for p in NOTEBOOKS if p.stem != "dashboard"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STEP_OF = {Path(name).stem: step for step, name in guide.NOTEBOOKS.items()}

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def test_every_step_has_its_notebook():
    assert [p.stem for p in NOTEBOOKS] == STEPS
    assert sorted(guide.NOTEBOOKS.values()) == [f"{s}.ipynb" for s in STEPS[1:-1]]


@pytest.mark.parametrize("path", NOTEBOOKS + SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_without_outputs(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in doc["metadata"]
    for cell in doc["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]
        assert "attachments" not in cell


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.stem)
def test_notebooks_use_only_the_stable_api(path):
    # Module paths move (the core is being split into subpackages): the
    # notebooks name only what `xmailnb` exports and the `xmailnb.ui` widgets.
    import xmailnb

    source = "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                       for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code")
    imports = set(re.findall(r"^\s*(?:from|import)\s+([\w.]+)", source, re.MULTILINE))
    assert imports <= {"xmailnb", "xmailnb.ui"}, imports
    used = set(re.findall(r"\bxmailnb\.(\w+)\(", source))
    assert used <= set(xmailnb.__all__), used - set(xmailnb.__all__)


# -- running notebooks --------------------------------------------------------------------

def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _text(cell) -> str:
    """What a cell showed as text (printed, or its value's plain text)."""
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif "text/plain" in o.get("data", {}):
            parts.append(o["data"]["text/plain"])
    return "".join(parts)


def _errors(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]


def run_notebook(path: Path, *, lang: str | None = None, after_form=None, extra: str | None = None,
                 form_cell: str | None = None):
    """Run *path* cell by cell in its own kernel, as a trainee does: *after_form*
    (the trainee's work in the form) runs right after the form cell, or
    *form_cell* does it in the kernel (a cell inserted after the form's);
    *extra* is one more cell at the end; ``LANG`` is replaced by *lang* if given."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if form_cell is not None:
        at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "step-form" in _tags(c))
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(form_cell))
    if lang is not None:
        for cell in nb.cells:
            if cell.cell_type == "code" and "setup" in _tags(cell):
                assert 'LANG = "ja"' in cell.source
                cell.source = cell.source.replace('LANG = "ja"', f'LANG = "{lang}"')
    if extra is not None:
        nb.cells.append(nbformat.v4.new_code_cell(extra))
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)  # raises CellExecutionError on a failing cell
            if after_form is not None and "step-form" in _tags(cell):
                after_form()
    return nb


def _cells(nb, tag: str) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and tag in _tags(c)]


def _check_id(cell) -> str:
    m = re.search(r'hand_check\("([^"]+)"', cell.source)
    assert m, cell.source
    return m.group(1)


def _texts_key(check: str) -> str:
    return "handcheck.served" if check.startswith("served.") else f"handcheck.{check}"


def _passed(check: str, lang: str) -> str:
    return Msg.of("handcheck.passed", text=Msg.of(f"{_texts_key(check)}.means")).render(lang)


def _failed(check: str, lang: str) -> str:
    return Msg.of("handcheck.failed", text=Msg.of(f"{_texts_key(check)}.failure")).render(lang)


def _reading(check: str, lang: str) -> str:
    return Msg.of("handcheck.reading", text=Msg.of(f"{_texts_key(check)}.means")).render(lang)


def _missing_first(step: str, lang: str) -> str:
    """The message of the first required step not done on a fresh sandbox."""
    first = guide.REQUIRES[step][0]
    return Msg.of("guide.requires.todo", step=guide.step_ref(first),
                  notebook=guide.NOTEBOOKS[first]).render(lang)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    mr = create_sandbox(tmp_path / "MailRoot")
    monkeypatch.setenv("MAIL_ROOT", str(mr.path))
    return mr


# -- each notebook on a fresh sandbox -----------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom_on_a_fresh_sandbox(path, sandbox):
    # The progress log only gains a line (step 1's diagnosis was shown, DESIGN §6).
    unchanged = (LOCK, REL_PROGRESS_LOG)
    before = tree(sandbox.path, exclude=unchanged)
    nb = run_notebook(path)
    assert _errors(nb) == []
    # showing a step and checking by hand change nothing in the MailRoot
    assert tree(sandbox.path, exclude=unchanged) == before
    if path.stem == "dashboard":
        return
    setup = _text(_cells(nb, "setup")[0])
    assert str(sandbox.path) in setup
    if path.stem == "00_start_here":
        overview = guide.progress_overview(sandbox, lang="ja").render()
        assert overview in setup
        assert Msg.of("guide.overview.next", step=guide.step_ref("diagnose"),
                      notebook="01_diagnose.ipynb").render("ja") in setup
        return
    step = STEP_OF[path.stem]
    if guide.REQUIRES[step]:
        # Opened too early: it says which step to do first and where, no error.
        assert _missing_first(step, "ja") in setup
    else:
        assert Msg.of("guide.requires.none").render("ja") in setup
    form = _cells(nb, "step-form")
    assert len(form) == 1 and any(WIDGET_VIEW in o.get("data", {}) for o in form[0].outputs)
    for cell in _cells(nb, "handcheck"):
        shown = _text(cell)
        assert shown.startswith("【"), shown  # the check's heading, then what ran or why not
        assert "Traceback" not in shown


def test_a_notebook_in_english_says_so_in_english_and_its_form_follows(sandbox):
    path = ROOT / "notebooks" / "04_install.ipynb"
    nb = run_notebook(path, lang="en", extra="print(step.lang)")
    assert _errors(nb) == []
    setup = _text(_cells(nb, "setup")[0])
    assert _missing_first("install", "en") in setup
    assert "Do step 2 (Key and CSR) first" in setup and "02_csr.ipynb" in setup
    assert _text(nb.cells[-1]).strip() == "en"
    pair = next(c for c in _cells(nb, "handcheck") if _check_id(c) == "cert.pair")
    assert "Not yet: missing server.key, server.cert, which step 4 (Install) makes" in _text(pair)


def test_a_rolled_back_step_is_reported_as_undone_with_what_to_do(sandbox):
    from xmailnb.flows import actions

    make_csr(sandbox)
    sign_and_install(sandbox)
    actions.rollback(sandbox)  # undoes the install: server.cert and server.key removed
    shown = guide.require_steps("settings", sandbox, lang="ja").render()
    assert shown == Msg.of("guide.requires.broken", step=guide.step_ref("install"),
                           notebook="04_install.ipynb").render("ja")
    assert "ロールバック" in shown and "元に戻す" not in shown


def test_the_probe_notebook_checks_the_practice_server_its_form_started(sandbox, monkeypatch):
    # The trainee presses "Start practice server" (free ports) and "Check now"
    # in the form; the hand checks then connect to that server by themselves.
    monkeypatch.delenv("XMAILNB_PRACTICE_PORTS", raising=False)
    make_csr(sandbox)
    sign_and_install(sandbox)
    nb = run_notebook(ROOT / "notebooks" / "06_probe.ipynb", lang="en",
                      form_cell="ports = step.start_practice()\nstep.run().result(timeout=60)\nprint(ports)",
                      extra="step.stop_practice()")
    assert _errors(nb) == []
    ports = json.loads(_text(nb.cells[[i for i, c in enumerate(nb.cells) if "step-form" in _tags(c)][0] + 1])
                       .strip().replace("'", '"'))
    checks = {_check_id(c): _text(c) for c in _cells(nb, "handcheck")}
    assert set(checks) == {"served.smtp", "served.pop3s"}
    for check, shown in checks.items():
        endpoint = check.partition(".")[2]
        assert f"127.0.0.1:{ports[endpoint]}" in shown, shown
        assert "Verify return code: 0 (ok)" in shown and _passed(check, "en") in shown, shown
    from xmailnb.checks.progress import step_progress

    assert step_progress(sandbox)["probe"] == "done"


def test_without_openssl_the_cells_say_so_and_still_give_the_verdict(sandbox, monkeypatch, tmp_path):
    make_csr(sandbox)
    sign_and_install(sandbox)
    bin_dir = tmp_path / "bin"  # ls and grep, no openssl
    bin_dir.mkdir()
    for program in ("ls", "grep"):
        (bin_dir / program).symlink_to(shutil.which(program))
    monkeypatch.setenv("PATH", str(bin_dir))
    nb = run_notebook(ROOT / "notebooks" / "04_install.ipynb", lang="en")
    assert _errors(nb) == []
    checks = {_check_id(c): _text(c) for c in _cells(nb, "handcheck")}
    assert "-rw------- " in checks.pop("files")  # ls is there
    missing = Msg.of("handcheck.no_program", program="openssl").render("en")
    for shown in checks.values():
        assert "$ openssl " in shown and missing in shown, shown  # the command, and why it did not run
        assert "xmailnb's verdict: " in shown and "Traceback" not in shown, shown
    assert "xmailnb's verdict: ✔" in checks["cert.pair"]


# -- the whole course on one sandbox ---------------------------------------------------------

# What a trainee does in each step's form, done through the core.

def make_csr(mr) -> None:
    from xmailnb.flows import actions
    from xmailnb.pki import csr

    request = csr.request_from_values({"country": "JP", "state": "Tokyo", "locality": "Shibuya-ku",
                                       "org": "Example Co., Ltd.", "cn": "mail.example.jp",
                                       "aliases": "smtp.example.jp"})
    actions.create_csr(mr, request)


def sign(mr) -> None:
    from xmailnb.flows import practice

    practice.sign_pending_csr(mr)


def install(mr) -> None:
    from xmailnb.flows import actions, practice

    issued = practice.issued(mr)
    plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")])
    actions.apply_install(mr, plan)


def sign_and_install(mr) -> None:
    sign(mr)
    install(mr)


def no_password_in_clear(mr) -> None:
    # What 05's prose recommends: AUTH only after STARTTLS (or on SMTPS).
    from xmailnb.flows import actions

    actions.change_settings(mr, {"SmtpNoTLSAuths": ""})


def start_practice_server_and_check(mr, servers: list, smtp: int, pop3s: int) -> None:
    # "Start practice server", then "Check now".
    from xmailnb.checks import probe
    from xmailnb.flows.practice import PracticeServer

    server = PracticeServer(mr, smtp_port=smtp, pop3s_port=pop3s)
    servers.append(server)
    server.start()
    results = probe.probe("127.0.0.1", ports={"smtp": smtp, "pop3s": pop3s}, mailroot=mr)
    assert all(r.status != "error" for r in results), [r.message.render("en") for r in results]
    probe.record(mr, results)


def read_the_notice(mr) -> None:
    from xmailnb.flows import notice

    notice.record_shown(mr, once=True)


ACTIONS = {
    "02_csr": lambda mr, *_: make_csr(mr),
    "03_submit": lambda mr, *_: sign(mr),
    "04_install": lambda mr, *_: install(mr),
    "05_settings": lambda mr, *_: no_password_in_clear(mr),
    "06_probe": start_practice_server_and_check,
    "07_notice": lambda mr, *_: read_the_notice(mr),
}

def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# What each hand check shows at that point of the course: by default the good
# result; a fresh sandbox has no server.cert yet; server.tab's lines are there
# to be read.
RAW = {  # openssl's own words that must be there
    ("02_csr", "pending.show"): "verify OK",
    ("03_submit", "received.verify"): "sslconf/practice-ca/issued/server.crt: OK",
    ("04_install", "cert.verify"): "server.cert: OK",
    ("04_install", "files"): "-rw------- ",
    ("05_settings", "settings.grep"): '"SmtpNoTLSAuths"\t""',
    ("06_probe", "served.smtp"): "Verify return code: 0 (ok)",
    ("06_probe", "served.pop3s"): "Verify return code: 0 (ok)",
    ("07_notice", "cert.names"): "DNS:mail.example.jp",
    ("01_diagnose#2", "cert.verify"): "server.cert: OK",
}


def _expect(visit: str, check: str) -> str:
    if visit == "01_diagnose#1":
        return "failed" if check == "files" else "not_yet"
    if check == "settings.grep":
        return "reading"
    return "passed"


def _not_yet_prefix(lang: str) -> str:
    """What a hand check says before the file it reads exists, up to the file names."""
    text = Msg.of("handcheck.not_yet", paths="@@@", step=guide.step_ref("install"),
                  notebook="04_install.ipynb").render(lang)
    return text.split("@@@")[0]


def _error_verdict(lang: str) -> str:
    return Msg.of("handcheck.verdict", icon=Msg.of("handcheck.icon.error"), message="").render(lang).strip()


@needs_openssl
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_whole_course_on_one_sandbox(sandbox, monkeypatch, lang):
    smtp, pop3s = _free_ports(2)
    # As a classroom gives each trainee fixed practice ports.
    monkeypatch.setenv("XMAILNB_PRACTICE_PORTS", f"smtp={smtp},pop3s={pop3s}")
    servers: list = []
    visits = ["00_start_here", "01_diagnose#1", "02_csr", "03_submit", "04_install", "05_settings", "06_probe",
              "07_notice", "01_diagnose#2", "00_start_here#2"]
    try:
        for visit in visits:
            stem = visit.split("#")[0]
            action = ACTIONS.get(visit)
            nb = run_notebook(ROOT / "notebooks" / f"{stem}.ipynb", lang=lang,
                              after_form=(lambda a=action: a(sandbox, servers, smtp, pop3s)) if action else None)
            assert _errors(nb) == [], visit
            setup = _text(_cells(nb, "setup")[0])
            if stem == "00_start_here":
                final = visit.endswith("#2")
                key = "guide.overview.all_done" if final else "guide.overview.next"
                params = {} if final else {"step": guide.step_ref("diagnose"), "notebook": "01_diagnose.ipynb"}
                assert Msg.of(key, **params).render(lang) in setup, (visit, setup)
            else:
                # Every earlier step it needs is done: no "do step N first".
                assert "✖" not in setup and "⚠" not in setup, (visit, setup)
            for cell in _cells(nb, "handcheck"):
                check, shown = _check_id(cell), _text(cell)
                expected = _expect(visit, check)
                if expected == "passed":
                    assert _passed(check, lang) in shown, (visit, shown)
                elif expected == "failed":
                    assert _failed(check, lang) in shown, (visit, shown)
                elif expected == "reading":
                    assert _reading(check, lang) in shown, (visit, shown)
                else:
                    assert _not_yet_prefix(lang) in shown, (visit, shown)
                    assert guide.step_ref("install").render(lang) in shown, (visit, shown)
                raw = RAW.get((visit, check)) or RAW.get((stem, check))
                if raw is not None:
                    assert raw in shown, (visit, check, shown)
                # xmailnb's verdict never contradicts a good result
                if expected == "passed":
                    assert _error_verdict(lang) not in shown, (visit, shown)
    finally:
        for server in servers:
            server.stop()


# -- the dashboard's words ---------------------------------------------------------------------

def _prose(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in cells if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.stem)
def test_prose_names_steps_and_controls_as_the_dashboard_does(path):
    # A trainee who switches between a notebook and the dashboard reads the
    # same words: step names, buttons and choices are the catalog's own.
    from xmailnb.i18n import catalog
    from xmailnb.checks.progress import STEPS

    prose = _prose(path)
    ja_text = re.sub(r"\s*\n\s*", "", prose)  # Japanese lines wrap without a space
    en_text = re.sub(r"\s+", " ", prose)
    ja, en = set(catalog("ja").values()), set(catalog("en").values())
    for n, name in re.findall(r"手順 ?(\d)「([^」]+)」", ja_text):
        assert name == catalog("ja")[f"ui.nav.{STEPS[int(n) - 1]}"], (n, name)
    for n, name in re.findall(r"\bstep (\d) \(([^)]+)\)", en_text):
        assert name == catalog("en")[f"ui.nav.{STEPS[int(n) - 1]}"], (n, name)
    controls_ja = re.findall(r"「([^」]+)」(?:を押|で「)", ja_text) + re.findall(r"画面の「([^」]+)」", ja_text)
    controls_en = re.findall(r"[Pp]ress \"([^\"]+)\"", en_text) + [
        name for pair in re.findall(r"\"([^\"]+)\" under \"([^\"]+)\"", en_text) for name in pair]
    assert [c for c in controls_ja if c not in ja] == []
    assert [c for c in controls_en if c not in en] == []
    # The dashboard calls going back a rollback (ロールバック), nothing else.
    assert "元に戻す" not in ja_text


@pytest.mark.parametrize("path", [p for p in TEACHING if p.stem in STEP_OF], ids=lambda p: p.stem)
def test_prose_says_which_earlier_steps_the_notebook_needs(path):
    # The same steps its first cell checks (guide.REQUIRES / RECOMMENDS), by
    # the dashboard's names, with their notebooks.
    from xmailnb.checks.progress import STEPS

    step = STEP_OF[path.stem]
    wanted = set(guide.REQUIRES[step]) | set(guide.RECOMMENDS.get(step, ()))
    prose = _prose(path)
    ja_line = next(line for line in prose.splitlines() if line.startswith("**前に済ませておく手順**"))
    en_line = next(line for line in prose.splitlines() if line.startswith("**Earlier steps needed**"))
    named_ja = {STEPS[int(n) - 1] for n in re.findall(r"手順 (\d)「", ja_line)}
    named_en = {STEPS[int(n) - 1] for n in re.findall(r"\bstep (\d) \(", en_line)}
    assert named_ja == named_en == wanted
    for earlier in wanted:
        for line, lang in ((ja_line, "ja"), (en_line, "en")):
            assert guide.step_ref(earlier).render(lang) in line and guide.NOTEBOOKS[earlier] in line
    if not wanted:
        assert "ありません" in ja_line and "none" in en_line

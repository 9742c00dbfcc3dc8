"""The live check's words in the page: the page's own controls, never the
command line's options, and the practice server where the sandbox is open
(issue 18 §4)."""

from __future__ import annotations

import dataclasses
import html
import re
import socket

import pytest

from xmailnb.mailroot.resolve import resolve
from xmailnb.ui import ProbeStep

OPTION = re.compile(r"(?<![\w-])--[a-z]")


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def _rows(step) -> str:
    return html.unescape(" ".join(row.value for row in step.rows.children))


@pytest.mark.parametrize("lang, advice", [
    ("en", "This is the practice sandbox: start the practice server above (Start practice server); "
           "the Ports field then takes its ports."),
    ("ja", "ここは練習用サンドボックスです。上の「練習用サーバーを起動」を押してください。"
           "「ポート」の欄に練習用サーバーのポートが入ります。"),
])
def test_a_refused_port_in_the_sandbox_names_the_practice_server_not_an_option(mailroot, lang, advice):
    step = ProbeStep(mailroot, lang=lang)
    step.ports.value = f"smtp={_closed_port()},pop3s={_closed_port()}"
    step.run_button.click()
    assert step.wait(30)
    text = _rows(step)
    assert text.count(advice) == 2, text
    assert not OPTION.search(text), text
    assert "xmailnb " not in text


def test_a_refused_port_on_a_live_mailroot_names_the_ports_field(mailroot):
    live = dataclasses.replace(resolve(mailroot), is_sandbox=False)
    step = ProbeStep(live, lang="en")
    port = _closed_port()
    step.ports.value = f"submission={port}"
    step.run_button.click()
    assert step.wait(30)
    text = _rows(step)
    assert (f"Start XMail, or check that it serves submission on port {port}. "
            "If you do not offer submission, remove it from the Ports field.") in text
    assert "practice" not in text and not OPTION.search(text), text

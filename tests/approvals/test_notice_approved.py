"""The notice for mail-client users, as they will read it, for each port combination."""

from __future__ import annotations

import pytest

from helpers import run
from xmailnb.flows.notice import notice_text
from xmailnb.mailroot.sandbox import create_sandbox
from xmailnb.mailroot.workbook import save_probe_settings

#: Port combination -> (listeners the live check was told about, server.tab settings).
COMBINATIONS = {
    # XMail's stock listeners, STARTTLS on: two ways to send, two to receive.
    "stock": (None, []),
    # STARTTLS off for SMTP: SMTPS alone for sending, a single line.
    "starttls-off": (None, ["EnableSMTP-TLS=0"]),
    # Only an SMTPS listener: nothing encrypted to receive with.
    "smtps-only": ({"smtps": 465}, []),
    # Submission on 587 (XMail started with -SI ...:587), named for the live check.
    "submission": ({"smtps": 465, "submission": 587, "smtp": 25, "pop3s": 995, "pop3": 110}, []),
}


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_notice(tmp_path, approve, combination, lang):
    mr = create_sandbox(tmp_path / "MailRoot")
    ports, settings = COMBINATIONS[combination]
    if ports is not None:
        save_probe_settings(mr, host=None, ports=ports)
    for setting in settings:
        assert run("settings", "--mailroot", str(mr.path), "--set", setting).code == 0
    approve(notice_text(mr, lang))

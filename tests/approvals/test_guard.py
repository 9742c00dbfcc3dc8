"""The guard and the scrubber themselves: what they refuse and replace."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from guard import unreadable
from scrub import Scrubber
from xmailnb.checks.progress import StepState
from xmailnb.status import Status

SNAPSHOTS = Path(__file__).parent / "__snapshots__"


@pytest.mark.parametrize("bad", [
    "Use one of these settings:\\x0a   - Port 465",       # an escaped line break
    "CN = xmailnb Practice Root CA \\u2014 NOT",           # an escaped character
    "CN = xmailnb Practice Root CA \\E2\\80\\94 NOT",      # OpenSSL's byte escapes
    "Ports: notice.port.tls",                              # a raw catalog key
    "<xmailnb.i18n.Msg object at 0x7f3a2b1c>",             # a repr
    f"state: {StepState.TODO!r}",                          # an enum repr
    f"Status: {Status.OK!r}",
    f"names: {['mail.example.jp']}",                       # a list repr
    "Port {port} with SSL/TLS",                            # a placeholder left unfilled
    "Host name: None",                                     # a missing value printed as such
])
def test_guard_refuses(bad):
    assert unreadable(bad), bad


@pytest.mark.parametrize("good", [
    "Port 465 with SSL/TLS\n   - Port 25 with STARTTLS",
    "Wrote sslconf/server.key and sslconf/server.csr (see server.tab).",
    "証明書の確認（検証）は必ず有効のままにしてください。",
    "xmailnb Practice Root CA — NOT FOR PRODUCTION",
    "None of the endpoints answered.",
])
def test_guard_lets_plain_text_through(good):
    assert unreadable(good) == []


def test_every_approved_file_is_readable():
    files = sorted(SNAPSHOTS.rglob("*.txt"))
    assert files
    for path in files:
        assert unreadable(path.read_text(encoding="utf-8")) == [], path


def test_scrubber_keeps_times_relative_to_the_clock():
    now = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)
    s = Scrubber(now)
    s.register("/tmp/pytest-of-x/pytest-7/test_a0", "<tmp>")
    s.register(40123, "<port:smtp>")
    text = ("valid until 2027-03-05T23:00+00:00 (2027-03-05), checked 2026-12-06 10:42 UTC, "
            "in /tmp/pytest-of-x/pytest-7/test_a0/MailRoot on 127.0.0.1:40123 and 465, "
            "SHA-256 DE:DC:8A:E2:0C:32:04:44, serial 3930c3ae12, archive 20261206T223112401721Z")
    assert s(text) == ("valid until <now+89d23h> (<today+89d>), checked <now+10h42m>, "
                       "in <tmp>/MailRoot on 127.0.0.1:<port:smtp> and 465, "
                       "SHA-256 <hex>, serial <hex>, archive <archive-id>")


def test_scrubber_drops_pem_bodies_as_text_and_in_json():
    s = Scrubber(dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc))
    pem = "-----BEGIN CERTIFICATE REQUEST-----\nMIIC2j+/CC=\nAQAw\n-----END CERTIFICATE REQUEST-----\n"
    assert s(pem) == "-----BEGIN CERTIFICATE REQUEST-----\n<base64>\n-----END CERTIFICATE REQUEST-----\n"
    assert s(json.dumps({"csr": pem})) == json.dumps(
        {"csr": "-----BEGIN CERTIFICATE REQUEST-----\n<base64>\n-----END CERTIFICATE REQUEST-----\n"})

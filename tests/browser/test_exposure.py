"""Private key material never reaches the browser.

A CSR (and so a private key) is generated and a certificate installed from
the page; then the whole DOM and every websocket frame the page sent or
received are searched for the key: its PEM header and lines of its body.
The server's log is searched too.
"""

from __future__ import annotations

import time


import pki
from helpers import sign_csr_file

# Chromium through Playwright: outside the quick loop (make test-quick).

CSR_VALUES = {"country": "JP", "state": "Tokyo", "locality": "Chiyoda-ku", "org": "Exposure Test",
              "cn": "mail.example.jp"}


def _key_fragments(pem: bytes) -> list[str]:
    body = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
    # Whole base64 lines: any one of them in a message would be a leak.
    return body[1:-1]


def test_no_private_key_material_in_page_or_websocket(browser, served, tmp_path):
    frames: list[str] = []
    context = browser.new_context()
    page = context.new_page()

    def watch(ws):
        ws.on("framesent", lambda payload: frames.append(payload if isinstance(payload, str) else payload.decode(
            "utf-8", "replace")))
        ws.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else payload.decode(
            "utf-8", "replace")))

    page.on("websocket", watch)
    page.goto(served.url, wait_until="commit", timeout=120_000)  # logs in, then the page
    page.wait_for_selector(".xm-app", timeout=120_000)
    page.wait_for_selector("#loading", state="detached", timeout=120_000)
    page.click(".xm-nav-csr")
    page.wait_for_selector(".xm-step-csr", state="visible")
    for name, value in CSR_VALUES.items():
        page.fill(f".xm-csr-{name} input", value)
    page.wait_for_selector(".xm-csr-generate:not([disabled])")
    csr_path = served.mailroot / "sslconf" / "server.csr"
    old_csr = csr_path.read_bytes() if csr_path.is_file() else None
    page.click(".xm-csr-generate")
    if old_csr is not None:  # replacing the pending pair is confirmed first
        page.wait_for_selector(".xm-csr-confirm", state="visible")
        page.click(".xm-csr-confirm")
    deadline = time.monotonic() + 60
    while (not csr_path.is_file() or csr_path.read_bytes() == old_csr) and time.monotonic() < deadline:
        time.sleep(0.1)
    page.wait_for_function(
        "csr => { const t = document.querySelector('.xm-csr-text textarea'); return t && t.value.trim() === csr; }",
        arg=csr_path.read_text().strip(), timeout=30_000)
    key_pem = (served.mailroot / "sslconf" / "server.key").read_bytes()

    # Install a certificate for that key from the page, so the key is also
    # read and written by the install path while the page watches.
    root = pki.root()
    inter = root.sign("Exposure Intermediate", ca=True)
    leaf = sign_csr_file(inter, served.mailroot / "sslconf" / "server.csr")
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    (tmp_path / "inter.pem").write_bytes(inter.pem)
    page.click(".xm-nav-install")
    page.wait_for_selector(".xm-step-install", state="visible")
    for field, path in (("cert", tmp_path / "leaf.pem"), ("chain", tmp_path / "inter.pem")):
        # The class sits on the upload widget itself (or its wrapper).
        button = page.locator(f".xm-install-{field}.widget-upload, .xm-install-{field} .widget-upload")
        with page.expect_file_chooser() as chooser:
            button.first.click()
        chooser.value.set_files(str(path))
    page.wait_for_selector(".xm-install-apply:not([disabled])")
    page.click(".xm-install-apply")
    server_key = served.mailroot / "server.key"
    deadline = time.monotonic() + 30  # the preview already says "ok": wait for the files
    while not (server_key.is_file() and server_key.read_bytes() == key_pem) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_key.read_bytes() == key_pem
    time.sleep(0.5)  # the last frames
    dom = page.content()
    page.close(run_before_unload=True)  # as a user closes the tab: its kernel stops
    context.close()

    everything = [dom, *frames, served.said]
    # nor the access token
    for text in everything:
        assert served.token not in text
    assert frames, "no websocket traffic was seen"
    assert len(_key_fragments(key_pem)) > 10
    # The public CSR did travel: the search would see key lines if they did.
    csr_line = _key_fragments((served.mailroot / "sslconf" / "server.csr").read_bytes())[0]
    assert any(csr_line in f for f in frames)
    for text in everything:
        assert "PRIVATE KEY" not in text
        for fragment in _key_fragments(key_pem):
            assert fragment not in text

"""The dashboard's door in a real browser: logging in, the cookie, the page's
language, a hostile page in another tab, the "connection lost" banner, and
kernels freed when a tab is closed."""

from __future__ import annotations

import http.server
import re
import threading
import time

import pytest

# Chromium through Playwright: outside the quick loop (make test-quick).

CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def test_login_address_sets_an_http_only_strict_cookie_and_leaves_the_address(browser, served):
    page = served.open_page(browser)
    try:
        assert page.url == served.base_url  # the token left the address bar
        assert served.token not in page.url
        cookies = {c["name"]: c for c in page.context.cookies()}
        login = cookies[f"xmailnb-{served.port}"]
        assert login["httpOnly"] and login["sameSite"] == "Strict" and login["path"] == "/"
        assert served.token not in login["value"]
        # the page's scripts cannot read it
        assert f"xmailnb-{served.port}" not in page.evaluate("document.cookie")
        assert served.token not in page.content()
        history = page.evaluate("window.location.href + ' ' + document.referrer")
        assert served.token not in history
    finally:
        served.close_pages()


def test_without_the_token_a_login_page_in_the_browsers_language(browser, served):
    context = browser.new_context(locale="ja-JP")
    try:
        page = context.new_page()
        response = page.goto(served.base_url)
        assert response.status == 401
        assert page.locator(".xm-app").count() == 0
        title = page.locator(".xm-door-login h1").inner_text()
        assert CJK.search(title), title
        page.fill("input[name=token]", "wrong-token-0123456789")
        page.click("button[type=submit]")
        page.wait_for_selector(".xm-door-login .note")
        assert page.locator(".xm-app").count() == 0
        page.fill("input[name=token]", served.token)
        page.click("button[type=submit]")
        page.wait_for_selector(".xm-app", timeout=120_000)
        page.wait_for_selector("#loading", state="detached", timeout=120_000)
        assert page.url == served.base_url
        page.close(run_before_unload=True)
    finally:
        context.close()


@pytest.mark.parametrize("locale, lang", [("ja-JP", "ja"), ("en-US", "en")])
def test_page_takes_the_browsers_language(browser, served, locale, lang):
    page = served.open_page(browser, locale=locale)
    try:
        app = page.locator(".xm-app")
        assert f"xm-page-lang-{lang}" in (app.get_attribute("class") or "")
        nav = page.locator(".xm-nav-diagnose").inner_text()
        assert bool(CJK.search(nav)) == (lang == "ja"), nav
        page.wait_for_function(f"document.documentElement.lang === '{lang}'", timeout=10_000)
    finally:
        served.close_pages()


def test_serve_lang_wins_over_the_browser_and_the_switch_wins_over_both(browser, dashboard):
    server = dashboard(lang="en")
    page = server.open_page(browser, locale="ja-JP")
    app = page.locator(".xm-app")
    assert "xm-page-lang-en" in (app.get_attribute("class") or "")
    assert not CJK.search(page.locator(".xm-nav-diagnose").inner_text())
    # the page's own switch overrides it for this page
    page.locator(".xm-lang button", has_text="日本語").click()
    page.wait_for_function("document.querySelector('.xm-app').classList.contains('xm-page-lang-ja')")
    page.wait_for_function("/[\\u3040-\\u30ff\\u4e00-\\u9fff]/.test(document.querySelector('.xm-nav-diagnose').innerText)")


ATTACKER = """<!DOCTYPE html><html><body>
<img src="{target}?img=1">
<iframe src="{target}"></iframe>
<form id="f" method="post" action="{target}xmailnb/login"><input name="token" value="guess-guess-guess-guess"></form>
<script>
fetch("{target}", {{mode: "no-cors", credentials: "include"}}).catch(() => {{}});
fetch("{target}api/kernels", {{credentials: "include"}}).catch(() => {{}});
try {{ new WebSocket("{ws}api/kernels/00000000-0000-0000-0000-000000000000/channels"); }} catch (e) {{}}
setTimeout(() => document.getElementById("f").submit(), 1500);
</script></body></html>"""


def test_a_hostile_page_in_another_tab_gets_nothing_and_starts_no_kernel(browser, dashboard):
    server = dashboard()
    victim = server.open_page(browser)  # the admin is logged in, in the same browser
    context = victim.context
    server.wait_kernels(lambda n: n == 2)  # the admin's page and the preheated kernel
    before = server.kernel_pids()
    body = ATTACKER.format(target=server.base_url, ws=server.base_url.replace("http", "ws")).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    seen: list[tuple[str, int]] = []
    try:
        attacker = context.new_page()
        attacker.on("response", lambda r: seen.append((r.url, r.status)))
        for _ in range(3):
            attacker.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
            time.sleep(2.5)
        ours = [(url, status) for url, status in seen if url.startswith(server.base_url)]
        assert len(ours) >= 6, seen
        assert {status for _, status in ours} == {403}, ours
        time.sleep(2)
        assert sorted(server.kernel_pids()) == sorted(before)
        # the admin's page still works
        victim.click(".xm-nav-csr")
        victim.wait_for_selector(".xm-step-csr", state="visible")
    finally:
        evil.shutdown()


@pytest.mark.parametrize("locale, words", [("ja-JP", "接続が切れました"), ("en-US", "Connection to the dashboard lost")])
def test_connection_lost_banner_when_the_server_goes_away(browser, dashboard, locale, words):
    server = dashboard()
    page = server.open_page(browser, locale=locale)
    assert page.locator(".xm-disconnected").count() == 0
    time.sleep(3)  # a few rounds of the page's check: no false alarm
    assert page.locator(".xm-disconnected").count() == 0
    server.proc.terminate()  # the server goes away (as on Ctrl-C)
    start = time.monotonic()
    page.wait_for_selector(".xm-disconnected", state="visible", timeout=15_000)
    assert time.monotonic() - start < 10
    banner = page.locator(".xm-disconnected").inner_text()
    assert words in banner
    assert page.locator(".xm-disconnected button").count() == 1


def test_banner_when_the_pages_kernel_is_stopped(browser, dashboard):
    server = dashboard()
    page = server.open_page(browser)
    kid = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
    resp = server.request("DELETE", f"/api/kernels/{kid}", auth=True)  # e.g. culled, or stopped by an admin
    assert resp.status == 204, resp.status
    page.wait_for_selector(".xm-disconnected", state="visible", timeout=15_000)


def test_closing_the_tab_stops_its_kernel_at_once(browser, dashboard):
    server = dashboard()  # default page timeout: 60 s
    page = server.open_page(browser)
    server.wait_kernels(lambda n: n == 2)
    page.close(run_before_unload=True)
    start = time.monotonic()
    server.wait_kernels(lambda n: n == 1, timeout=20)
    assert time.monotonic() - start < 20


def test_too_many_open_pages_says_so_in_the_browsers_language(browser, dashboard):
    server = dashboard("--max-pages", "1")
    first = server.open_page(browser)
    second = server.open_page(browser, locale="ja-JP", wait=False)
    second.wait_for_selector(".xm-door-too_many", timeout=60_000)
    assert CJK.search(second.locator("h1").inner_text())
    assert len(server.kernel_pids()) <= 2
    first.close(run_before_unload=True)
    server.wait_kernels(lambda n: n <= 1, timeout=30)
    second.reload()
    second.wait_for_selector(".xm-app", timeout=120_000)
    second.wait_for_selector("#loading", state="detached", timeout=120_000)


def test_an_open_page_keeps_its_kernel_a_vanished_one_frees_it(browser, dashboard):
    server = dashboard("--page-timeout", "5")
    page = server.open_page(browser)
    server.wait_kernels(lambda n: n == 2)
    time.sleep(15)  # three timeouts: the page is connected, so its kernel stays however quiet
    assert len(server.kernel_pids()) == 2
    page.click(".xm-nav-csr")
    page.wait_for_selector(".xm-step-csr", state="visible")
    assert page.locator(".xm-disconnected").count() == 0
    # the browser goes away without telling the server (no beforeunload)
    page.context.close()
    start = time.monotonic()
    server.wait_kernels(lambda n: n == 1, timeout=60)
    assert time.monotonic() - start < 40


def _loaded(page) -> None:
    page.wait_for_selector(".xm-app", timeout=120_000)
    page.wait_for_selector("#loading", state="detached", timeout=120_000)


def test_eight_visits_within_a_minute_are_all_served(browser, dashboard):
    # Issue 18 §5: open, close and reopen (and reload) the dashboard eight
    # times within a minute; the default cap of 4 pages never refuses one.
    server = dashboard()
    first = server.open_page(browser)
    context = first.context
    first.close(run_before_unload=True)
    start = time.monotonic()
    served = []
    for visit in range(8):
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(server.base_url, wait_until="commit")
        if visit % 2:  # every other visit is a reload of the page just opened
            page.wait_for_selector(".xm-app", timeout=120_000)
            page.reload(wait_until="commit")
        page.wait_for_selector(".xm-app", timeout=120_000)
        served.append(page.locator(".xm-door-too_many").count() == 0 and page.url == server.base_url)
        page.close(run_before_unload=True)
    assert served == [True] * 8
    # A minute on a quiet machine; the cap counts pages, not time, so a
    # slower run on a loaded machine proves the same.
    assert time.monotonic() - start < 150
    # every closed page gave its kernel back: only the preheated one is left
    server.wait_kernels(lambda n: n <= 1, timeout=30)


def test_a_cookie_taken_to_another_port_opens_nothing(browser, dashboard):
    # Issue 17 §6: cookies are not port-scoped; a page on another port of
    # 127.0.0.1 receives the login cookie.  The cookie alone gets the page
    # that asks for the token, no kernel and no websocket.
    server = dashboard()
    victim = server.open_page(browser)
    server.wait_kernels(lambda n: n == 2)
    stolen = [c for c in victim.context.cookies() if c["name"] == f"xmailnb-{server.port}"]
    assert stolen and not any(c.get("expires", -1) > 0 for c in stolen)  # a session cookie
    thief = browser.new_context()
    try:
        thief.add_cookies(stolen)
        page = thief.new_page()
        response = page.goto(server.base_url)
        assert response.status == 200
        page.wait_for_selector(".xm-door-login input[name=token]", state="visible", timeout=10_000)
        assert page.locator(".xm-app").count() == 0
        channels = page.evaluate("""async () => {
            const r = await fetch('/api/kernels', {credentials: 'same-origin'});
            return r.status; }""")
        assert channels == 403
        time.sleep(2)
        assert len(server.kernel_pids()) == 2
    finally:
        thief.close()
    # the admin's page still works
    victim.click(".xm-nav-csr")
    victim.wait_for_selector(".xm-step-csr", state="visible")

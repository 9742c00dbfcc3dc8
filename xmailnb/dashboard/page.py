"""What the dashboard notebook learns from the browser's request.

``xmailnb serve`` preheats a kernel: the dashboard's imports run before any
browser asks for the page, and the notebook then waits for the request as
Voilà's :func:`voila.utils.wait_for_request` does (same socket, same
variables; :func:`wait_for_request` here, because importing ``voila.utils``
in the kernel loads Voilà's server, Jupyter Server, nbconvert and
JupyterLab's server: about 45 MiB in every kernel, ``docs/performance.md``).
Voilà hands the waiting kernel
the request's query string and the headers listed in
``VoilaConfiguration.http_header_envs`` (``serve`` lists ``Accept-Language``)
as environment variables (``HTTP_ACCEPT_LANGUAGE``).  Without preheating
(the pool was empty) Voilà puts the same variables into the new kernel's
environment, so both paths read the same place.

The page's language, in this order: ``serve --lang`` (``XMAILNB_PAGE_LANG``);
otherwise the browser's ``Accept-Language``; otherwise the server's locale.
The page's own language switch then overrides it for that page.

The query socket the kernel waits on sits behind the server's door like every
route: it is reached with a per-run key (``XMAILNB_PAGE_QUERY_URL``, known
only to the server and its kernels), not with the browser's cookie.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from websockets import connect  # Voilà's own client (light: no Voilà, no Jupyter Server)

from ..i18n import LANGUAGES, detect_language
from ..logs import follow_environment

__all__ = ["Page", "accept_language", "page_language", "wait_for_page", "wait_for_request", "LANG_CLASS_PREFIX"]

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)

QUERY_URL_ENV = "XMAILNB_PAGE_QUERY_URL"
PAGE_LANG_ENV = "XMAILNB_PAGE_LANG"
#: The app root carries ``xm-page-lang-<code>`` for its current language, so
#: the page's own scripts (the "connection lost" banner) speak it too.
LANG_CLASS_PREFIX = "xm-page-lang-"


def accept_language(header: str) -> str | None:
    """The first of our languages the browser accepts, by its preference.

    ``Accept-Language`` (RFC 9110, 12.5.4) is a list of language ranges with
    optional weights: ``ja,en-US;q=0.9,en;q=0.8``.  A range's primary subtag
    picks the language (``ja-JP`` -> ``ja``); ``q=0`` means "not this one";
    ``*`` names no language in particular and is skipped.

    >>> accept_language("fr-CA, ja;q=0.8, en;q=0.5")
    'ja'
    >>> accept_language("en-GB;q=0.4, ja;q=0")
    'en'
    """
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header[:1024].split(",")):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = -1.0
        if not 0 < weight <= 1:
            continue
        primary = tag.strip().split("-")[0].lower()
        if primary in LANGUAGES:
            ranked.append((-weight, index, primary))
    return min(ranked)[2] if ranked else None


def page_language(environ: Mapping[str, str] | None = None) -> str:
    """The page's language from the kernel's environment (see the module text)."""
    env = os.environ if environ is None else environ
    forced = env.get(PAGE_LANG_ENV, "").strip().lower()
    if forced in LANGUAGES:
        return forced
    browser = accept_language(env.get("HTTP_ACCEPT_LANGUAGE", ""))
    return browser or detect_language(env)


@dataclass(frozen=True)
class Page:
    """The request that opened this page.

    Attributes:
        lang: the language the page opens in.
    """

    lang: str

    def follow(self, app: Any) -> Any:
        """Keep the class ``xm-page-lang-<code>`` on *app* (a widget with a
        ``lang`` trait, e.g. the Wizard) in step with its language; returns
        *app*, so the cell shows it."""

        def mark(lang: str) -> None:
            for code in LANGUAGES:
                app.remove_class(LANG_CLASS_PREFIX + code)
            app.add_class(LANG_CLASS_PREFIX + (lang if lang in LANGUAGES else self.lang))

        mark(getattr(app, "lang", self.lang))
        app.observe(lambda change: mark(change["new"]), "lang")
        return app


def _query_url(url: str | None) -> str:
    """The request-info socket of this kernel, as Voilà builds it."""
    if url is None:
        protocol = os.getenv("VOILA_WS_PROTOCOL", "ws")
        server_ip = os.getenv("VOILA_APP_IP", "127.0.0.1")
        server_port = os.getenv("VOILA_APP_PORT", "8866")
        server_url = os.getenv("VOILA_SERVER_URL", "/")
        ws_base_url = os.getenv("VOILA_WS_BASE_URL", server_url)
        url = f"{protocol}://{server_ip}:{server_port}{ws_base_url}voila/query"
    return f"{url}/{os.getenv('VOILA_KERNEL_ID')}"


async def _request_info(ws_url: str) -> str | None:
    try:
        async with connect(ws_url, open_timeout=5, max_size=2**20) as websocket:
            info = await websocket.recv()
    except (TimeoutError, OSError) as exc:
        log.warning("the page's request did not reach the kernel: %s", exc)
        return None
    return info if isinstance(info, str) else info.decode("utf-8", "replace")


def wait_for_request(url: str | None = None) -> None:
    """Voilà's ``wait_for_request`` without importing Voilà: in a preheated
    kernel, wait for the page's request and put its variables (query
    string, listed headers) into ``os.environ``."""
    if os.getenv("VOILA_PREHEAT", "False") == "False":
        return
    ws_url = _query_url(url)
    found: list[str | None] = [None]

    def inner() -> None:  # the cell runs on the kernel's loop: wait on a loop of our own
        loop = asyncio.new_event_loop()
        try:
            found[0] = loop.run_until_complete(_request_info(ws_url))
        finally:
            loop.close()

    thread = threading.Thread(target=inner, name="xmailnb-wait-for-request")
    thread.start()
    thread.join()
    if found[0] is not None:
        for key, value in json.loads(found[0]).items():
            os.environ[key] = value


def wait_for_page() -> Page:
    """Wait for the browser's request (preheated kernel), then say what it asked for.

    Outside a preheated Voilà (a notebook in Jupyter, a kernel started for
    the request) this returns at once.
    """
    follow_environment()  # serve --verbose: this kernel's store changes on the server's terminal
    if os.environ.get("VOILA_PREHEAT") == "True":
        wait_for_request(os.environ.get(QUERY_URL_ENV) or None)
    return Page(lang=page_language())

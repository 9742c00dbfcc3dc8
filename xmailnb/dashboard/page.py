"""What the dashboard notebook learns from the browser's request.

``xmailnb serve`` preheats a kernel: the dashboard's imports run before any
browser asks for the page, and the notebook then waits for the request with
Voilà's :func:`voila.utils.wait_for_request`.  Voilà hands the waiting kernel
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

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

from voila.utils import wait_for_request

from ..i18n import LANGUAGES, detect_language

__all__ = ["Page", "accept_language", "page_language", "wait_for_page", "LANG_CLASS_PREFIX"]

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


def wait_for_page() -> Page:
    """Wait for the browser's request (preheated kernel), then say what it asked for.

    Outside a preheated Voilà (a notebook in Jupyter, a kernel started for
    the request) this returns at once.
    """
    if os.environ.get("VOILA_PREHEAT") == "True":
        wait_for_request(os.environ.get(QUERY_URL_ENV) or None)
    return Page(lang=page_language())

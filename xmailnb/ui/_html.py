"""The page's HTML: one small Jinja2 environment with autoescape.

Every value that reaches an HTML widget goes through a template here, so a
certificate subject, a file name or a remote server's greeting can never
become markup.  Messages are rendered for the page
(:meth:`xmailnb.i18n.Msg.page`) before they get here: the templates only
place and escape them.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

__all__ = ["render", "preload", "Markup", "data_uri"]

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
# Line breaks a message carries become <br> (after escaping).
_ENV.filters["lines"] = lambda value: Markup("<br>").join(str(value).split("\n"))

TEMPLATES: dict[str, str] = {
    # A heading and optional text under it.
    "tag": "<{{ tag }}{% if cls %} class=\"{{ cls }}\"{% endif %}>{{ text|lines }}</{{ tag }}>",
    # The outcome message of a step: the first line, then its fixes.
    "message": (
        "{% for line in lines %}<div class=\"{{ 'xm-text' if loop.first else 'xm-fix' }}\">{{ line|lines }}</div>"
        "{% endfor %}"),
    # A step's head: its number and title, and why it matters.
    "step_head": (
        "<div class=\"xm-step-head\"><div class=\"xm-step-number\">{{ number }}</div>"
        "<div><h3 class=\"xm-step-title\">{{ title }}</h3>"
        "<p class=\"xm-why\">{{ why|lines }}</p></div></div>"),
    # A label above an input, and the guidance under the label.
    "label": (
        "<label class=\"xm-label\">{{ label }}{% if optional %} <span class=\"xm-optional\">{{ optional }}</span>"
        "{% endif %}</label>{% if hint %}<div class=\"xm-hint\">{{ hint|lines }}</div>{% endif %}"),
    # A download link that looks like a button (data: URI, no server round trip).
    "download": ("<a class=\"xm-download {{ cls }}\" download=\"{{ filename }}\" href=\"{{ uri }}\">"
                 "<span aria-hidden=\"true\">&#x2913;</span> {{ label }}</a>"),
    # A list of lines, with a title.
    "list": ("{% if title %}<div class=\"xm-list-title\">{{ title }}</div>{% endif %}"
             "<ul class=\"xm-list{% if cls %} {{ cls }}{% endif %}\">{% for item in items %}"
             "<li{% if item.cls %} class=\"{{ item.cls }}\"{% endif %}>{{ item.text|lines }}</li>{% endfor %}</ul>"),
    # Finding rows (icon, check name, message, fix) in groups; a group may be
    # a <details> (collapsed or open) and hold sections with a note each.
    "findings": (
        "{% macro rows(items) %}{% for row in items %}"
        "<div class=\"{{ row.classes }}\"><span class=\"xm-icon\" title=\"{{ row.status }}\">{{ row.icon }}</span>"
        "<div class=\"xm-finding-body\">{% if row.name %}<span class=\"xm-check-name\">{{ row.name }}</span> {% endif %}"
        "{% if row.text %}<span class=\"xm-text\">{{ row.text|lines }}</span>{% endif %}"
        "{% if row.fix %}<div class=\"xm-fix\">{{ row.fix|lines }}</div>{% endif %}</div></div>"
        "{% endfor %}{% endmacro %}"
        "{% for group in groups %}"
        "{% if group.collapsed is not none %}<details class=\"xm-group xm-group-{{ group.kind }}\""
        "{% if not group.collapsed %} open{% endif %}><summary>{{ group.title }}</summary>"
        "{% else %}<div class=\"xm-group xm-group-{{ group.kind }}\">"
        "{% if group.title %}<div class=\"xm-group-title\">{{ group.title }}</div>{% endif %}{% endif %}"
        "{{ rows(group.rows) }}"
        "{% for section in group.sections or () %}<div class=\"xm-group-note\">{{ section.note }}</div>"
        "<div class=\"xm-group-{{ section.kind }}\">{{ rows(section.rows) }}</div>{% endfor %}"
        "{% if group.collapsed is not none %}</details>{% else %}</div>{% endif %}"
        "{% endfor %}"),
    # The wizard's header: title, the server's state in one line, where.
    "header": (
        "<div class=\"xm-brand\">{{ title }}</div>"
        "<div class=\"xm-headline xm-headline-{{ status }}\" role=\"status\"><span class=\"xm-icon\">{{ icon }}</span> "
        "{{ headline }}</div>"
        "<div class=\"xm-mailroot\">{{ where }}</div>"),
    # What the workbook does, and what the marks mean.
    "orientation": (
        "<div class=\"xm-orientation\">{{ intro }}</div>"
        "<div class=\"xm-legend\">{% for mark, cls, text in legend %}"
        "<span class=\"xm-legend-item {{ cls }}\"><span class=\"xm-mark\">{{ mark }}</span> {{ text }}</span>"
        "{% endfor %}</div>"),
    # A banner (practice sandbox, reset notice).
    "banner": "<div class=\"{{ cls }}\" role=\"{{ role or 'note' }}\">{{ text|lines }}</div>",
    # The DNS records an ACME dns-01 order waits for.
    "txt_records": ("<div>{{ intro }}</div><table class=\"xm-table\">{% for r in records %}"
                    "<tr><td><code>{{ r.name }}</code></td><td>TXT</td><td><code>{{ r.value }}</code></td></tr>"
                    "{% endfor %}</table>"),
    # A server.tab variable: its name and what it does.
    "setting_head": "<code class=\"xm-var\">{{ name }}</code> <span class=\"xm-var-summary\">{{ summary }}</span>",
    # One endpoint of the live check.
    "endpoint": ("<span class=\"xm-icon\">{{ icon }}</span><div class=\"xm-finding-body\">"
                 "<span class=\"xm-check-name\">{{ head }}</span> <span class=\"xm-text\">{{ text|lines }}</span>"
                 "{% for fix in fixes %}<div class=\"xm-fix\">{{ fix|lines }}</div>{% endfor %}</div>"),
}


@lru_cache(maxsize=None)
def _template(name: str) -> Any:
    return _ENV.from_string(TEMPLATES[name])


def preload() -> None:
    """Compile every template now (a preheated kernel does it before the
    page is asked for: about 20 ms each on the first render otherwise)."""
    for name in TEMPLATES:
        _template(name)


def render(name: str, /, **context: Any) -> str:
    """Render template *name* with *context*; every value is escaped unless
    it is :class:`~markupsafe.Markup` (the output of another template)."""
    return str(_template(name).render(**context))


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

"""The text a person sees on the page, read from the headless widget tree.

Walks the ipywidgets tree in page order, leaves out what is hidden
(``display: none``, ``visibility: hidden``) and writes one line per thing
read: HTML as text, buttons as ``[label]``, boxes to tick as ``☐``/``☑``,
choices as ``label ▾ chosen (choices: a | b)``, input fields as their
value or, when empty, their placeholder in ``⟨…⟩``.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import ipywidgets as widgets

__all__ = ["page_text"]

_BLOCK = {"div", "p", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "section",
          "details", "summary", "pre", "header", "footer", "dt", "dd", "dl", "blockquote"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self.skip += 1
        elif tag == "br" or tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("• ")
        if tag in ("td", "th"):
            self.parts.append(" | ")
        if tag == "input" and dict(attrs).get("type") == "checkbox":
            self.parts.append("☑ " if "checked" in dict(attrs) else "☐ ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self.skip -= 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_text(markup: str) -> list[str]:
    """The lines a browser would show for *markup* (whitespace collapsed)."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return [line for line in lines if line]


def _hidden(w: Any) -> bool:
    layout = getattr(w, "layout", None)
    return layout is not None and (layout.display == "none" or layout.visibility == "hidden")


def _choices(w: Any) -> str:
    labels = [str(label) for label in getattr(w, "_options_labels", ()) or ()]
    chosen = getattr(w, "label", None)
    head = f"{w.description} ▾ " if getattr(w, "description", "") else "▾ "
    return f"{head}{chosen if chosen is not None else '⟨⟩'} (choices: {' | '.join(labels)})"


def _lines(w: Any) -> list[str]:
    disabled = " (disabled)" if getattr(w, "disabled", False) else ""
    if isinstance(w, (widgets.HTML, widgets.HTMLMath, widgets.Label)):
        return html_text(w.value) if not isinstance(w, widgets.Label) else [w.value] if w.value else []
    if isinstance(w, widgets.Button):
        return [f"[{w.description}]{disabled}"] if w.description or w.icon else []
    if isinstance(w, widgets.FileUpload):
        return [f"[{w.description} …]{disabled}"]
    if isinstance(w, (widgets.Checkbox, widgets.ToggleButton)):
        return [f"{'☑' if w.value else '☐'} {w.description}{disabled}"]
    if isinstance(w, (widgets.ToggleButtons, widgets.Dropdown, widgets.RadioButtons, widgets.Select)):
        return [_choices(w) + disabled]
    if isinstance(w, (widgets.Text, widgets.Textarea)):
        label = f"{w.description}: " if w.description else ""
        shown = w.value if w.value else f"⟨{w.placeholder}⟩" if w.placeholder else "⟨⟩"
        return [f"{label}{line}" if i == 0 else line for i, line in enumerate(shown.split("\n"))] + (
            [disabled.strip()] if disabled else [])
    if isinstance(w, widgets.ValueWidget) and not isinstance(w, widgets.Box):
        return [f"{getattr(w, 'description', '')} {w.value}".strip()]
    return []


def page_text(root: Any) -> str:
    """Every visible text under *root*, one line per thing read, in page order."""
    out: list[str] = []

    def walk(w: Any) -> None:
        if _hidden(w):
            return
        out.extend(_lines(w))
        for child in getattr(w, "children", ()) or ():
            walk(child)
    walk(root)
    return "\n".join(out) + "\n"

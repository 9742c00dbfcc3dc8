"""Catalogs: gettext files for both languages, complete, consistent, real Japanese.

Each test reports every offending message at once, so one run shows the
whole job for a translator.
"""

from __future__ import annotations

import ast
import json
import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from xmailnb import i18n
from xmailnb.i18n import LANGUAGES, Msg, catalog, detect_language, text

_FIELD = string.Formatter()
PACKAGE = Path(i18n.__file__).parent


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in _FIELD.parse(template) if name}


def po(lang: str):
    with open(i18n.locale_dir() / lang / "LC_MESSAGES" / "xmailnb.po", "rb") as fh:
        return {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in read_po(fh) if m.id}


def forms(message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def test_same_keys_in_both_languages():
    ja, en = catalog("ja"), catalog("en")
    assert sorted(set(en) - set(ja)) == []
    assert sorted(set(ja) - set(en)) == []


def test_every_entry_translated_and_not_fuzzy():
    bad = [(lang, key) for lang in LANGUAGES for key, m in po(lang).items()
           if m.fuzzy or not all(forms(m))]
    assert bad == []


def test_same_placeholders_in_every_form_of_both_languages():
    en, ja = po("en"), po("ja")
    bad = []
    for key, message in en.items():
        expected = placeholders(forms(message)[-1])
        for lang, entry in (("en", message), ("ja", ja[key])):
            for i, form in enumerate(forms(entry)):
                found = placeholders(form)
                if lang == "en" and i == 0 and len(forms(entry)) > 1:
                    found |= {"count"}  # "1 certificate": the count may be spelt out
                if found != expected:
                    bad.append((lang, key, sorted(found ^ expected)))
    assert bad == []


def test_plural_entries_have_each_languages_forms_and_count():
    # English: one/other; Japanese has a single form.  The form is chosen by
    # the message's `count` parameter, so every form must use {count}.
    # (The English singular may say "1" or "this" instead of {count}.)
    bad = []
    for lang, nforms in (("en", 2), ("ja", 1)):
        for key, m in po(lang).items():
            if isinstance(m.id, tuple):
                if len(forms(m)) != nforms or "{count}" not in forms(m)[-1]:
                    bad.append((lang, key))
    assert bad == []
    en_plural = {k for k, m in po("en").items() if isinstance(m.id, tuple)}
    ja_plural = {k for k, m in po("ja").items() if isinstance(m.id, tuple)}
    assert en_plural == ja_plural


def test_no_word_s_in_english():
    # Plural forms exist for this: "1 certificate" / "2 certificates".
    bad = [k for k, v in catalog("en").items() if re.search(r"\w\(s\)", v)]
    assert bad == []


def test_plural_forms_render():
    assert Msg.of("diagnose.cert.chain.ok", count=1).render("en").endswith("(1 certificate).")
    assert Msg.of("diagnose.cert.chain.ok", count=3).render("en").endswith("(3 certificates).")
    assert "3 枚" in Msg.of("diagnose.cert.chain.ok", count=3).render("ja")


def test_japanese_catalog_is_japanese():
    # Every Japanese sentence that is not a bare label or path must contain
    # kana or kanji: a copied English line is a translation gap.
    japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")

    def english_words(v: str) -> int:
        return len(re.findall(r"[A-Za-z]{3,}", re.sub(r"\{[^}]*\}", "", v)))

    untranslated = [k for k, v in catalog("ja").items()
                    if not japanese.search(v) and english_words(v) >= 3]
    assert untranslated == []


def _literal_keys() -> dict[str, set[str]]:
    """String literals in the package that look like message keys, by file."""
    domains = {k.split(".", 1)[0] for k in catalog("en")}
    pattern = re.compile(r"^(%s)\.[a-z0-9_]+(\.[a-z0-9_]+)*$" % "|".join(map(re.escape, sorted(domains))))
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.match(node.value):
                found.setdefault(str(path.relative_to(PACKAGE)), set()).add(node.value)
    return found


def test_every_key_named_in_the_code_exists_in_both_languages():
    from xmailnb.checks.diagnose import CHECK_IDS

    # Check ids share a few domain names ("csr.pending", "acme.renewal").
    not_keys = {*CHECK_IDS, "acme.renewal"}
    missing = sorted((f, k) for f, keys in _literal_keys().items() for k in keys
                     if k not in not_keys and not i18n.has(k, "en") and not i18n.has(k, "ja"))
    assert missing == []


def test_nested_messages_render_in_the_same_language():
    msg = Msg.of("cli.warning", text=Msg.of("common.yes"))
    assert msg.render("ja") == "注意: はい"
    assert msg.render("en") == "Warning: yes"


def test_missing_key_shows_the_key_not_a_traceback():
    assert text("no.such.key", "ja") == "no.such.key"


def test_catalog_compiled_in_memory_when_not_built(tmp_path, monkeypatch):
    # A source checkout without the compiled .mo still speaks both
    # languages, and nothing is written into the package folder.
    import shutil

    folder = tmp_path / "locale"
    shutil.copytree(i18n.locale_dir(), folder, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(i18n, "locale_dir", lambda: folder)
    i18n._translations.cache_clear()
    try:
        assert text("common.yes", "ja") == "はい"
        assert not list(folder.rglob("*.mo"))
    finally:
        i18n._translations.cache_clear()


def test_built_catalog_is_current():
    # `make setup` compiles the catalogs (setup.py, Babel); a stale .mo
    # would show old texts.
    for lang in LANGUAGES:
        po_file = i18n.locale_dir() / lang / "LC_MESSAGES" / "xmailnb.po"
        mo_file = po_file.with_suffix(".mo")
        if mo_file.exists():
            # Compared entry by entry: the header holds a compile time.
            built = _entries(mo_file.read_bytes())
            assert built == _entries(i18n.compile_po(po_file)), lang


def _entries(mo: bytes) -> dict:
    import gettext
    import io

    class Entries(gettext.GNUTranslations):
        def _parse(self, fp):
            super()._parse(fp)
            self.entries = {k: v for k, v in self._catalog.items() if k != ""}

    return Entries(io.BytesIO(mo)).entries


@pytest.mark.parametrize("env,expected", [
    ({"LANG": "ja_JP.UTF-8"}, "ja"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LC_ALL": "ja_JP.eucJP", "LANG": "en_US"}, "ja"),
    ({"XMAILNB_LANG": "en", "LANG": "ja_JP.UTF-8"}, "en"),
    ({"LANG": "C"}, "en"),
])
def test_language_from_locale(env, expected):
    assert detect_language(env) == expected


# -- the page's words (issue 13: no command-line talk in the page) -----------------

# Entries only the command line (or a notebook's hand check, which shows the
# command it runs) shows: they may name its options.
_CLI_ONLY = ("cli.", "classroom.", "serve.", "acme.cli.", "handcheck.")


def _cli_only(key: str) -> bool:
    if key.endswith(i18n.PAGE_SUFFIX):
        return False
    if key.startswith(_CLI_ONLY) or ".help." in key or key.endswith(".help"):
        return True
    # `xmailnb sandbox`; the page's own sandbox lines are sandbox.page.*
    return key.startswith("sandbox.") and not key.startswith("sandbox.page.")


def test_every_entry_that_talks_command_line_has_a_page_variant():
    from helpers import CLI_TALK

    missing = []
    for key in catalog("en"):
        if _cli_only(key) or key.endswith(i18n.PAGE_SUFFIX):
            continue
        if any(CLI_TALK.search(catalog(lang)[key]) for lang in LANGUAGES):
            if key + i18n.PAGE_SUFFIX not in catalog("en"):
                missing.append(key)
    assert missing == []


def test_page_variants_name_no_option_or_command_and_keep_the_placeholders():
    from helpers import CLI_TALK

    bad = []
    for key in catalog("en"):
        if not key.endswith(i18n.PAGE_SUFFIX):
            continue
        base = key[: -len(i18n.PAGE_SUFFIX)]
        if base not in catalog("en"):
            bad.append((key, "no base entry"))
            continue
        for lang in LANGUAGES:
            if CLI_TALK.search(catalog(lang)[key]):
                bad.append((key, lang, catalog(lang)[key]))
        # The page variant may leave out a value the page shows elsewhere,
        # never ask for one the code does not give.
        extra = placeholders(catalog("en")[key]) - placeholders(catalog("en")[base])
        if extra:
            bad.append((key, sorted(extra)))
    assert bad == []


def test_page_rendering_takes_the_page_variant_also_for_nested_messages():
    fix = Msg.of("diagnose.cert.missing.fix")
    assert "--chain" in fix.render("en") and "--chain" not in fix.page("en")
    assert "step 4" in fix.page("en") and "手順 4" in fix.page("ja")
    outer = Msg.of("cli.warning", text=fix)
    assert "--chain" in outer.render("en")
    assert "--chain" not in outer.render("en", i18n.Surface.PAGE)
    # No variant: the page shows the entry itself.
    assert Msg.of("common.yes").page("ja") == "はい"


def test_times_and_days_render_in_one_local_format(monkeypatch):
    import datetime as dt
    import time

    from xmailnb import clock

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        # 15:30 UTC is half past midnight of the next day in Tokyo.
        when = clock.now().replace(hour=15, minute=30, second=0, microsecond=0)
        tokyo = (when + dt.timedelta(hours=9)).replace(tzinfo=None)
        assert i18n.format_datetime(when) == f"{tokyo:%Y-%m-%d %H:%M} JST"
        assert i18n.local_date(when) == tokyo.date()
        msg = Msg.of("ui.submit.practice.done", subject="CN=x", not_after=i18n.local_date(when))
        assert tokyo.date().isoformat() in msg.render("en") and tokyo.date().isoformat() in msg.render("ja")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_composed_lines_keep_their_breaks_and_values_stay_escaped():
    from xmailnb.i18n import Lines

    # A value from outside (a certificate name) cannot add a line, even
    # inside lines the product composes; the product's own breaks stay.
    hostile = Msg.of("notice.port.tls", port="465\nEvil line")
    lines = Lines((Msg.of("notice.port.choose"), Lines((hostile, Msg.of("notice.port.starttls", port=25)),
                                                       prefix="- ")), prefix="  ")
    assert lines.render("en") == ("  Use one of these settings:\n"
                                  "  - Port 465\\x0aEvil line with SSL/TLS\n"
                                  "  - Port 25 with STARTTLS")
    assert Msg.from_record(Msg.of("notice.body", sending=lines).to_record()) == Msg.of("notice.body", sending=lines)
    # A rendered string is not accepted as a line, nor words as a prefix.
    with pytest.raises(TypeError):
        Lines(("Port 465",))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Lines((Msg.of("common.yes"),), prefix="Note: ")


def test_records_keep_lists_and_nothing_as_data_not_reprs():
    msg = Msg.of("cli.history.row", id="1", time="t", action=Msg.of("cli.action.install"),
                 files=["server.cert", Msg.of("cli.history.absent", name="server.key")])
    back = Msg.from_record(json.loads(json.dumps(msg.to_record())))
    assert back is not None and back.render("en") == msg.render("en")
    assert "[" not in msg.render("en") and "Msg(" not in msg.render("en")


_RENDERERS = {"text", "page_text", "render", "page", "t"}


def test_no_rendered_text_is_passed_as_a_parameter():
    """Text the product composes goes into another message as a Msg (or
    i18n.Lines), never rendered first: a rendered string parameter is
    escaped like a value from outside (its line breaks become \\x0a)."""
    offenders = []
    for path in sorted((Path(i18n.__file__).parent).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name not in {"text", "page_text", "of", "t", "_text"}:
                continue
            for kw in node.keywords:
                value = kw.value
                inner = value.func if isinstance(value, ast.Call) else None
                inner_name = (inner.attr if isinstance(inner, ast.Attribute) else
                              inner.id if isinstance(inner, ast.Name) else "")
                if inner_name in _RENDERERS:
                    offenders.append(f"{path.name}:{node.lineno}: {kw.arg}={ast.unparse(value)}")
    assert offenders == []

"""Catalogs: both languages complete, same placeholders, and real Japanese."""

from __future__ import annotations

import re
import string

import pytest

from xmailnb.i18n import Msg, catalog, detect_language, text

_FIELD = string.Formatter()


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in _FIELD.parse(template) if name}


def test_same_keys_in_both_languages():
    ja, en = catalog("ja"), catalog("en")
    assert sorted(set(en) - set(ja)) == []
    assert sorted(set(ja) - set(en)) == []


@pytest.mark.parametrize("key", sorted(catalog("en")))
def test_same_placeholders(key):
    assert placeholders(catalog("ja")[key]) == placeholders(catalog("en")[key])


def test_japanese_catalog_is_japanese():
    # Every Japanese sentence that is not a bare label or path must contain
    # kana or kanji: a copied English line is a translation gap.
    japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    def english_words(v: str) -> int:
        return len(re.findall(r"[A-Za-z]{3,}", re.sub(r"\{[^}]*\}", "", v)))

    untranslated = [k for k, v in catalog("ja").items()
                    if not japanese.search(v) and english_words(v) >= 3]
    assert untranslated == []


def test_nested_messages_render_in_the_same_language():
    msg = Msg.of("cli.warning", text=Msg.of("common.yes"))
    assert msg.render("ja") == "注意: はい"
    assert msg.render("en") == "Warning: yes"


def test_missing_key_shows_the_key_not_a_traceback():
    assert text("no.such.key", "ja") == "no.such.key"


@pytest.mark.parametrize("env,expected", [
    ({"LANG": "ja_JP.UTF-8"}, "ja"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LC_ALL": "ja_JP.eucJP", "LANG": "en_US"}, "ja"),
    ({"XMAILNB_LANG": "en", "LANG": "ja_JP.UTF-8"}, "en"),
    ({"LANG": "C"}, "en"),
])
def test_language_from_locale(env, expected):
    assert detect_language(env) == expected


def test_catalog_cache_follows_the_file(tmp_path, monkeypatch):
    # The parsed catalog is reused while the TOML file is unchanged, and a
    # changed file is read again.
    import shutil

    from xmailnb import i18n

    folder = tmp_path / "catalogs"
    shutil.copytree(i18n.Path(i18n.__file__).parent / "catalogs", folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(i18n, "_folder", lambda lang: folder / lang)
    i18n._domain.cache_clear()
    first = dict(i18n._domain("en", "common"))
    assert list((folder / "en" / "__pycache__").glob("common.*.marshal"))
    i18n._domain.cache_clear()
    assert dict(i18n._domain("en", "common")) == first
    (folder / "en" / "common.toml").write_text('"common.yes" = "yes indeed"\n"common.no" = "no"\n')
    i18n._domain.cache_clear()
    assert i18n._domain("en", "common")["common.yes"] == "yes indeed"
    assert len(list((folder / "en" / "__pycache__").glob("common.*.marshal"))) == 1
    i18n._domain.cache_clear()

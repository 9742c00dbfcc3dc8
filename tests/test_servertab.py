"""server.tab: byte-preserving edits, XMail's reading rules, TLS variable checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xmailnb.mailroot.servertab as servertab
from xmailnb.errors import InputError
from xmailnb.i18n import LANGUAGES, Msg, catalog
from xmailnb.mailroot.servertab import (
    TLS_VARIABLE_NAMES,
    TLS_VARIABLES,
    ServerTab,
    atoi,
    flag_value,
    mail_hostname,
    stock_servertab,
    tls_inconsistencies,
    tls_settings,
    validate_setting,
    variable,
)

SJIS_COMMENT = "# TLS の設定（証明書は server.cert）".encode("shift_jis")

WINDOWS_TAB = (
    b"#\r\n"
    + SJIS_COMMENT + b"\r\n"
    b'"RootDomain"\t"example.jp"\r\n'
    b'"SmtpServerDomain"\t\t"mail.example.jp"\r\n'
    b'#"SSLUseCertsFile"\t"0"\r\n'
    b'"EnableSMTP-TLS"\t"1"\t# keep\r\n'
    b'"CustomSMTPMessage"\t"say \\"hi\\""\r\n'
    b'"UnknownThing"\t"x"\r\n'
    b'"DefaultSmtpPerms"\t"MRVZ"\r\n'
)


def lines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def only_changed(before: bytes, after: bytes) -> list[tuple[bytes | None, bytes | None]]:
    """Pairs of (old, new) lines that differ, assuming at most one insertion."""
    old, new = lines(before), lines(after)
    if len(old) == len(new):
        return [(o, n) for o, n in zip(old, new, strict=True) if o != n]
    assert len(new) == len(old) + 1
    candidates = []
    for k in range(len(new)):
        rest = new[:k] + new[k + 1:]
        candidates.append([(None, new[k])] + [(o, n) for o, n in zip(old, rest, strict=True) if o != n])
    return min(candidates, key=len)


def one_line_inserted(old: list[bytes], new: list[bytes]) -> bool:
    """*new* is *old* plus one line; only the line before it may have gained a
    line ending (it was the last line and had none)."""
    if len(new) != len(old) + 1:
        return False
    for k in range(len(new)):
        rest = new[:k] + new[k + 1:]
        if all(o == r or (j == k - 1 and not o.endswith(b"\n") and r in (o + b"\n", o + b"\r\n"))
               for j, (o, r) in enumerate(zip(old, rest, strict=True))):
            return True
    return False


# -- reading -------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"",
    b"\n",
    b"\r\n\r\n",
    WINDOWS_TAB,
    WINDOWS_TAB.replace(b"\r\n", b"\n"),
    b'"A"\t"1"\n"B"\t"2"\r\n#c\r\n"C"\t"3"',
    b'"A"\t\t\t"1"\n',
    b'no tabs at all\n\t\t\n"lonely"\n',
    b"\xef\xbb\xbf# BOM first\r\n",
    b'"A"\t"1"\x00junk\n"B"\t"\x80\xff"\r\r\n',
    b'"A"\t"1"\rstill line one\n',
    SJIS_COMMENT,
    bytes(range(256)),
])
def test_round_trip_is_byte_identical(data):
    tab = ServerTab.parse(data)
    assert tab.to_bytes() == data
    assert not tab.changed
    assert tab.changed_lines() == []


def test_reads_values_as_xmail_does():
    tab = ServerTab.parse(WINDOWS_TAB)
    assert tab.get("RootDomain") == "example.jp"
    assert tab.get("SmtpServerDomain") == "mail.example.jp"  # tab runs collapse
    assert tab.get("EnableSMTP-TLS") == "1"  # a third field is ignored
    assert tab.get("CustomSMTPMessage") == 'say "hi"'
    assert tab.get("UnknownThing") == "x"
    assert tab.get("SSLUseCertsFile") is None  # commented out
    assert tab.get("rootdomain") is None  # names are case-sensitive
    assert tab.names() == ["RootDomain", "SmtpServerDomain", "EnableSMTP-TLS", "CustomSMTPMessage",
                           "UnknownThing", "DefaultSmtpPerms"]
    assert dict(tab.items())["DefaultSmtpPerms"] == "MRVZ"
    assert "RootDomain" in tab and "SSLUseCertsFile" not in tab
    assert tab.line_number("RootDomain") == 3
    assert tab.commented_line("SSLUseCertsFile") == 5


@pytest.mark.parametrize("line,expected", [
    (b'"V"\t"a\\\\b"', "a\\\\b"),          # only \" is an escape
    (b'"V"\t"C:\\path\\x"', "C:\\path\\x"),
    (b'"V"\tbare value', "bare value"),      # unquoted: verbatim
    (b'\t"V"\t"lead"', "lead"),              # leading tabs skipped like strtok
    (b'"V"\t""', ""),
    (b'"V"\t"unterminated', "unterminated"),
    (b'"V"\t"x"trailing', "x"),
    (b'"V"\t"1"\r\r', "1"),                  # trailing CRs stripped
])
def test_field_rules(line, expected):
    assert ServerTab.parse(line + b"\n").get("V") == expected


def test_lines_xmail_ignores():
    tab = ServerTab.parse(b'"Only"\n #"V"\t"1"\n\x00"V"\t"2"\n "V"\t"3"\n')
    assert tab.get("Only") is None
    assert tab.get("V") is None
    assert tab.get(' #"V"') == "1"  # a '#' not in column 0 is no comment


def test_first_definition_wins():
    tab = ServerTab.parse(b'"SSLWantVerify"\t"0"\n"SSLWantVerify"\t"1"\n')
    assert tab.get("SSLWantVerify") == "0"
    assert tab.definitions("SSLWantVerify") == [(1, "0"), (2, "1")]


def test_non_utf8_bytes_survive_get_and_set():
    data = b'"CustomSMTPMessage"\t"' + "メール".encode("shift_jis") + b'"\n"X"\t"1"\n'
    tab = ServerTab.parse(data)
    value = tab.get("CustomSMTPMessage")
    tab.set("X", "2")
    tab.set("CustomSMTPMessage", value)
    assert tab.to_bytes() == data.replace(b'"X"\t"1"', b'"X"\t"2"')


def test_read_from_disk(tmp_path: Path):
    path = tmp_path / "server.tab"
    path.write_bytes(WINDOWS_TAB)
    tab = ServerTab.read(path)
    assert tab.path == path and tab.to_bytes() == WINDOWS_TAB
    with pytest.raises(OSError):
        ServerTab.read(tmp_path / "missing.tab")


def test_parse_refuses_text():
    with pytest.raises(TypeError):
        ServerTab.parse("text")  # type: ignore[arg-type]


# -- editing -------------------------------------------------------------------

def test_set_existing_changes_only_its_value():
    tab = ServerTab.parse(WINDOWS_TAB)
    tab.set("EnableSMTP-TLS", "0")
    tab.set("SmtpServerDomain", "smtp.example.jp")
    after = tab.to_bytes()
    assert only_changed(WINDOWS_TAB, after) == [
        (b'"SmtpServerDomain"\t\t"mail.example.jp"\r\n', b'"SmtpServerDomain"\t\t"smtp.example.jp"\r\n'),
        (b'"EnableSMTP-TLS"\t"1"\t# keep\r\n', b'"EnableSMTP-TLS"\t"0"\t# keep\r\n'),
    ]
    assert SJIS_COMMENT in after
    assert [c.old_number for c in tab.changed_lines()] == [4, 6]
    assert tab.changed_lines()[1].after == '"EnableSMTP-TLS"\t"0"\t# keep'


def test_set_to_the_same_value_changes_nothing():
    data = b'"EnableSMTP-TLS"\t1\r\n'
    tab = ServerTab.parse(data)
    tab.set("EnableSMTP-TLS", "1")
    assert tab.to_bytes() == data and not tab.changed


def test_set_goes_right_after_the_stock_comment():
    tab = ServerTab.parse(WINDOWS_TAB)
    tab.set("SSLUseCertsFile", "1")
    after = tab.to_bytes()
    assert b'#"SSLUseCertsFile"\t"0"\r\n"SSLUseCertsFile"\t"1"\r\n"EnableSMTP-TLS"' in after
    assert only_changed(WINDOWS_TAB, after) == [(None, b'"SSLUseCertsFile"\t"1"\r\n')]
    assert tab.get("SSLUseCertsFile") == "1"


def test_set_absent_appends_with_dominant_line_ending():
    data = b'"A"\t"1"\r\n"B"\t"2"\r\n"C"\t"3"\n"D"\t"4"'
    tab = ServerTab.parse(data)
    tab.set("SSLWantVerify", "1")
    assert tab.to_bytes() == data + b'\r\n"SSLWantVerify"\t"1"\r\n'


def test_set_absent_in_lf_and_empty_files():
    tab = ServerTab.parse(b'"A"\t"1"\n')
    tab.set("SSLWantVerify", "1")
    assert tab.to_bytes() == b'"A"\t"1"\n"SSLWantVerify"\t"1"\n'
    empty = ServerTab.parse(b"")
    empty.set("EnableSMTP-TLS", "1")
    assert empty.to_bytes() == b'"EnableSMTP-TLS"\t"1"\n'


def test_set_after_a_final_comment_without_newline():
    tab = ServerTab.parse(b'"A"\t"1"\r\n#"SSLWantCert"\t"0"')
    tab.set("SSLWantCert", "1")
    assert tab.to_bytes() == b'"A"\t"1"\r\n#"SSLWantCert"\t"0"\r\n"SSLWantCert"\t"1"\r\n'


def test_set_edits_the_definition_xmail_uses():
    data = b'"SSLWantVerify"\t"0"\n"SSLWantVerify"\t"0"\n'
    tab = ServerTab.parse(data)
    tab.set("SSLWantVerify", "1")
    assert tab.to_bytes() == b'"SSLWantVerify"\t"1"\n"SSLWantVerify"\t"0"\n'
    assert tab.get("SSLWantVerify") == "1"


@pytest.mark.parametrize("value", ['say "hi"', "a\\b", 'x\\"y', "日本語", "", " spaced "])
def test_set_quotes_so_xmail_reads_the_same_value(value):
    tab = ServerTab.parse(b'"CustomSMTPMessage"\t"old"\n')
    tab.set("CustomSMTPMessage", value)
    assert ServerTab.parse(tab.to_bytes()).get("CustomSMTPMessage") == value


@pytest.mark.parametrize("name,value", [
    ("X", "a\tb"), ("X", "line\nbreak"), ("X", "cr\r"), ("X", "nul\x00"), ("X", "ends\\"),
    ("", "1"), ('"X"', "1"), ("X\tY", "1"),
])
def test_set_refuses_what_server_tab_cannot_hold(name, value):
    tab = ServerTab.parse(b"")
    with pytest.raises(ValueError):
        tab.set(name, value)
    assert tab.to_bytes() == b""


def test_unset_comments_out_every_definition():
    data = b'"SSLWantVerify"\t"1"\r\n"A"\t"2"\r\n"SSLWantVerify"\t"1"\r\n'
    tab = ServerTab.parse(data)
    assert tab.unset("SSLWantVerify") == 2
    assert tab.to_bytes() == b'#"SSLWantVerify"\t"1"\r\n"A"\t"2"\r\n#"SSLWantVerify"\t"1"\r\n'
    assert tab.get("SSLWantVerify") is None
    assert tab.unset("SSLWantVerify") == 0
    # Setting it again goes right after the commented line.
    tab.set("SSLWantVerify", "0")
    assert tab.to_bytes().startswith(b'#"SSLWantVerify"\t"1"\r\n"SSLWantVerify"\t"0"\r\n"A"')


# -- the property ----------------------------------------------------------------

_NAMES = ["SSLUseCertsFile", "EnableSMTP-TLS", "RootDomain", "SmtpNoTLSAuths"]
_no_lf = st.binary(max_size=16).map(lambda b: b.replace(b"\n", b""))
_field = st.binary(max_size=10).map(lambda b: b.replace(b"\n", b"").replace(b"\t", b""))


def _q(raw: bytes) -> bytes:
    return b'"' + raw.replace(b'"', b'\\"') + b'"'


_valid = st.builds(lambda n, sep, v: _q(n.encode()) + sep + _q(v),
                   st.sampled_from(_NAMES), st.sampled_from([b"\t", b"\t\t", b"\t\t\t"]), _field)
_line = st.one_of(
    _valid,
    _valid.map(lambda line: b"#" + line),        # stock commented-out variable
    _no_lf.map(lambda b: b"#" + b),              # comment, any bytes (0x80-0xff too)
    _no_lf,                                      # junk
    st.just(b""),
)
_file = st.builds(
    lambda items, final: (lambda d: d if final else d.rstrip(b"\r\n"))(b"".join(l + e for l, e in items)),
    st.lists(st.tuples(_line, st.sampled_from([b"\n", b"\r\n"])), max_size=12),
    st.booleans(),
)
_value = st.text(st.characters(blacklist_characters="\t\r\n\x00", blacklist_categories=("Cs",)),
                 max_size=10).filter(lambda s: not s.endswith("\\"))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_file, name=st.sampled_from(_NAMES), value=_value)
def test_property_round_trip_and_minimal_edit(data, name, value):
    tab = ServerTab.parse(data)
    assert tab.to_bytes() == data
    before = tab.get(name)
    tab.set(name, value)
    after = tab.to_bytes()
    assert tab.get(name) == value
    assert ServerTab.parse(after).get(name) == value
    if before == value:
        assert after == data
        return
    old, new = lines(data), lines(after)
    if len(new) == len(old):
        assert sum(o != n for o, n in zip(old, new, strict=True)) == 1
    else:
        assert one_line_inserted(old, new)


@settings(deadline=None)
@given(data=st.binary(max_size=200))
def test_property_any_bytes_parse_and_round_trip(data):
    tab = ServerTab.parse(data)
    assert tab.to_bytes() == data
    tls_inconsistencies(tab)
    tls_settings(tab)


# -- XMail's integer rules -------------------------------------------------------

@pytest.mark.parametrize("text,number", [
    ("1", 1), (" 12abc", 12), ("-3", -3), ("+4", 4), ("yes", 0), ("", 0), (None, 0), ("0x10", 0),
])
def test_atoi(text, number):
    assert atoi(text) == number


@pytest.mark.parametrize("text,on", [("1", True), ("2", True), ("0", False), ("yes", False),
                                     ("", False), (" 1", True), (None, False)])
def test_flag_value(text, on):
    assert flag_value(text) is on


# -- validation -------------------------------------------------------------------

def _refused(name: str, value: str) -> InputError:
    with pytest.raises(InputError) as info:
        validate_setting(name, value)
    return info.value


@pytest.mark.parametrize("name,value,normalised", [
    ("EnableSMTP-TLS", "1", "1"),
    ("SSLUseCertsFile", " 0 ", "0"),
    ("SSLMaxCertsDepth", "007", "7"),
    ("SSLMaxCertsDepth", "0", "0"),
    ("SmtpNoTLSAuths", "", ""),
    ("SmtpNoTLSAuths", "login, plain", "LOGIN,PLAIN"),
    ("SmtpNoTLSAuths", "CRAM-MD5,", "CRAM-MD5"),
    ("SmtpConfig", "WantTLS", "WantTLS"),
    ("SmtpConfig", "mail-auth, WantTLS=1", "mail-auth,WantTLS=1"),
    ("SmtpConfig", "", ""),
])
def test_valid_settings_are_normalised(name, value, normalised):
    assert validate_setting(name, value) == normalised


def test_unknown_name_lists_the_known_ones():
    err = _refused("SSLFoo", "1")
    assert err.msg.key == "servertab.name.unknown"
    assert err.fix is not None and err.fix.key == "servertab.name.unknown.fix"
    for name in TLS_VARIABLE_NAMES:
        assert name in err.fix.render("en")


def test_misspelt_name_gets_a_suggestion():
    err = _refused("SSLUseCertFile", "1")
    assert err.fix is not None and err.fix.key == "servertab.name.unknown.suggest"
    assert err.fix.params["suggestion"] == "SSLUseCertsFile"


def test_wrong_case_name_gets_the_right_spelling():
    err = _refused("sslusecertsfile", "1")
    assert err.msg.key == "servertab.name.case"
    assert err.fix is not None and "SSLUseCertsFile" in err.fix.render("ja")


@pytest.mark.parametrize("name,value,key", [
    ("EnableSMTP-TLS", "2", "servertab.value.flag"),
    ("EnableSMTP-TLS", "yes", "servertab.value.flag"),
    ("SSLWantVerify", "", "servertab.value.flag"),
    ("SSLMaxCertsDepth", "-1", "servertab.value.int"),
    ("SSLMaxCertsDepth", "three", "servertab.value.int"),
    ("SSLMaxCertsDepth", "1000", "servertab.value.int_range"),
    ("SmtpNoTLSAuths", 'LOGIN"', "servertab.value.chars"),
    ("SmtpNoTLSAuths", "LOGIN\tPLAIN", "servertab.value.chars"),
    ("SmtpNoTLSAuths", "DIGEST MD5", "servertab.value.auths"),
    ("SmtpConfig", "wanttls", "servertab.value.smtpconfig_case"),
    ("SmtpConfig", "RequireTLS", "servertab.value.smtpconfig_token"),
    ("SmtpConfig", "WantTLS=yes", "servertab.value.smtpconfig_value"),
])
def test_invalid_values_are_refused(name, value, key):
    err = _refused(name, value)
    assert err.msg.key == key
    assert err.fix is not None
    for lang in LANGUAGES:
        assert "{" not in err.render(lang)


# -- meanings ------------------------------------------------------------------------

@pytest.mark.parametrize("name,value,key", [
    ("EnableSMTP-TLS", None, "servertab.enable_smtp_tls.on"),
    ("EnableSMTP-TLS", "1", "servertab.enable_smtp_tls.on"),
    ("EnableSMTP-TLS", "0", "servertab.enable_smtp_tls.off"),
    ("EnableSMTP-TLS", "yes", "servertab.enable_smtp_tls.off"),  # atoi("yes") == 0
    ("EnableSMTP-TLS", "", "servertab.enable_smtp_tls.off"),
    ("SSLWantCert", "1", "servertab.ssl_want_cert.on"),
    ("SSLWantVerify", None, "servertab.ssl_want_verify.off"),
    ("SmtpNoTLSAuths", None, "servertab.smtp_no_tls_auths.unset"),
    ("SmtpNoTLSAuths", "", "servertab.smtp_no_tls_auths.empty"),
    ("SmtpNoTLSAuths", "LOGIN,PLAIN", "servertab.smtp_no_tls_auths.list"),
    ("SmtpNoTLSAuths", "DIGEST-MD5", "servertab.smtp_no_tls_auths.empty"),
    ("SSLMaxCertsDepth", None, "servertab.ssl_max_certs_depth.default"),
    ("SSLMaxCertsDepth", "", "servertab.ssl_max_certs_depth.default"),
    ("SSLMaxCertsDepth", "3", "servertab.ssl_max_certs_depth.limit"),
    ("SmtpConfig", None, "servertab.smtp_config.unset"),
    ("SmtpConfig", "", "servertab.smtp_config.none"),
    ("SmtpConfig", "WantTLS", "servertab.smtp_config.options"),
    ("SmtpConfig", "WantTLS=0", "servertab.smtp_config.none"),
])
def test_meaning(name, value, key):
    var = variable(name)
    assert var is not None
    msg = var.meaning(value)
    assert msg.key == key
    for lang in LANGUAGES:
        text = msg.render(lang)
        assert text and "{" not in text and text != key


def test_meaning_texts_say_what_happens():
    assert "STARTTLS is offered on SMTP" in variable("EnableSMTP-TLS").meaning("1").render("en")
    assert "only after STARTTLS" in variable("SmtpNoTLSAuths").meaning("").render("en")
    assert "verification" in variable("SSLWantCert").meaning("1").render("en")
    # XMail 1.27's StrLimIStr only finds the first name of the list.
    assert variable("SmtpNoTLSAuths").meaning("LOGIN,PLAIN").params["mechanisms"] == "LOGIN"
    assert variable("SmtpNoTLSAuths").meaning("plain").params["mechanisms"] == "PLAIN"
    options = variable("SmtpConfig").meaning("MailAuth,WantTLS,Bogus").render("en")
    assert "WantTLS" in options and "MailAuth" in options and "Bogus" in options
    assert "、" in variable("SmtpConfig").meaning("MailAuth,WantTLS").render("ja")


def test_tls_settings_rows():
    tab = ServerTab.parse(b'"SSLWantVerify"\t"1"\n"EnableSMTP-TLS"\t"1"\n"SmtpNoTLSAuths"\t""\n')
    rows = {r.name: r for r in tls_settings(tab)}
    assert list(rows) == list(TLS_VARIABLE_NAMES)
    assert list(TLS_VARIABLE_NAMES[:3]) == ["EnableSMTP-TLS", "EnablePOP3-TLS", "EnableCTRL-TLS"]
    verify = rows["SSLWantVerify"]
    assert (verify.value, verify.effective, verify.is_default, verify.kind, verify.line) == (
        "1", "1", False, "flag", 1)
    assert rows["EnableSMTP-TLS"].is_default is True  # explicit 1 equals the default
    assert rows["EnablePOP3-TLS"].value is None and rows["EnablePOP3-TLS"].effective == "1"
    assert rows["SmtpNoTLSAuths"].value == "" and rows["SmtpNoTLSAuths"].is_default is False
    assert rows["SmtpConfig"].default is None
    for row in rows.values():
        assert isinstance(row.summary, Msg) and isinstance(row.meaning, Msg)


def test_mail_hostname():
    assert mail_hostname(ServerTab.parse(b'"RootDomain"\t"Example.JP."\n')) == "example.jp"
    both = b'"RootDomain"\t"example.jp"\n"SmtpServerDomain"\t"mail.example.jp"\n'
    assert mail_hostname(ServerTab.parse(both)) == "mail.example.jp"
    assert mail_hostname(ServerTab.parse(b'"SmtpServerDomain"\t""\n"RootDomain"\t"a.jp"\n')) == "a.jp"
    assert mail_hostname(ServerTab.parse(b"")) is None


# -- inconsistencies ----------------------------------------------------------------

def _codes(data: bytes) -> dict[str, str]:
    return {i.code: i.severity for i in tls_inconsistencies(ServerTab.parse(data))}


def test_all_starttls_off():
    data = b'"EnableSMTP-TLS"\t"0"\n"EnablePOP3-TLS"\t"0"\n"EnableCTRL-TLS"\t"0"\n'
    assert _codes(data)["starttls.all_off"] == "warn"
    assert _codes(b'"EnablePOP3-TLS"\t"0"\n')["starttls.some_off"] == "info"


def test_want_tls_without_starttls_is_an_error_listed_first():
    data = b'"EnableSMTP-TLS"\t"0"\n"SmtpConfig"\t"mail-auth,WantTLS"\n'
    issues = tls_inconsistencies(ServerTab.parse(data))
    assert issues[0].code == "smtpconfig.want_tls_no_starttls" and issues[0].severity == "error"
    assert set(issues[0].names) == {"SmtpConfig", "EnableSMTP-TLS"}
    per_ip = b'"EnableSMTP-TLS"\t"0"\n"SmtpConfig-192.168.0.1"\t"WantTLS"\n'
    assert _codes(per_ip)["smtpconfig.want_tls_no_starttls"] == "error"
    assert "smtpconfig.want_tls_no_starttls" not in _codes(b'"SmtpConfig"\t"WantTLS"\n')


def test_want_cert_implies_verify():
    codes = _codes(b'"SSLWantCert"\t"1"\n"SSLUseCertsFile"\t"1"\n')
    assert codes["verify.implied"] == "info"
    assert "verify.no_ca" not in codes
    assert codes["verify.outbound"] == "warn"


def test_verify_without_ca_list():
    assert _codes(b'"SSLWantVerify"\t"1"\n')["verify.no_ca"] == "warn"


def test_verification_options_without_verification():
    issue = next(i for i in tls_inconsistencies(ServerTab.parse(
        b'"SSLUseCertsFile"\t"1"\n"SSLMaxCertsDepth"\t"3"\n')) if i.code == "verify.unused")
    assert issue.severity == "info" and issue.names == ("SSLUseCertsFile", "SSLMaxCertsDepth")


def test_auth_advice():
    assert _codes(b"")["auth.clear"] == "info"  # stock: passwords may go in clear
    assert "auth.clear" not in _codes(b'"SmtpNoTLSAuths"\t""\n')
    assert "auth.clear" not in _codes(b'"SmtpNoTLSAuths"\t"CRAM-MD5"\n')
    assert _codes(b'"SmtpNoTLSAuths"\t"CRAM-MD5,LOGIN"\n')["auth.first_only"] == "warn"
    assert _codes(b'"SmtpNoTLSAuths"\t""\n"EnableSMTP-TLS"\t"0"\n')["auth.smtps_only"] == "warn"


def test_file_level_problems():
    codes = _codes(b'"sslwantverify"\t"1"\n"EnableSMTP-TLS"\t"yes"\n"EnableSMTP-TLS"\t"1"\n')
    assert codes["name.case"] == "warn"
    assert codes["value.not_numeric"] == "warn"
    assert codes["name.duplicate"] == "warn"
    duplicate = next(i for i in tls_inconsistencies(ServerTab.parse(
        b'"EnableSMTP-TLS"\t"0"\n"EnableSMTP-TLS"\t"1"\n')) if i.code == "name.duplicate")
    assert duplicate.msg.params["line"] == 1 and duplicate.msg.params["value"] == "0"
    assert _codes(b'\xef\xbb\xbf"EnableSMTP-TLS"\t"1"\n')["file.bom"] == "warn"
    assert "file.bom" not in _codes(b"\xef\xbb\xbf# comment\n")
    assert _codes(b'"SmtpConfig"\t"wanttls"\n')["smtpconfig.ignored"] == "warn"


def test_clean_settings_have_nothing_to_report():
    assert tls_inconsistencies(ServerTab.parse(b'"SmtpNoTLSAuths"\t""\n')) == []


# -- stock template ------------------------------------------------------------------

@pytest.mark.parametrize("crlf", [False, True])
def test_stock_servertab(crlf):
    data = stock_servertab("example.jp", "mail.example.jp", crlf=crlf)
    assert (b"\r\n" in data) is crlf
    tab = ServerTab.parse(data)
    assert tab.to_bytes() == data
    assert tab.get("RootDomain") == "example.jp"
    assert mail_hostname(tab) == "mail.example.jp"
    for name in TLS_VARIABLE_NAMES:
        assert tab.get(name) is None
        assert tab.commented_line(name) is not None, name
    for row in tls_settings(tab):
        assert row.is_default
    # Turning a variable on puts it right under its stock comment.
    tab.set("SSLUseCertsFile", "1")
    number = tab.commented_line("SSLUseCertsFile")
    assert tab.line_number("SSLUseCertsFile") == number + 1
    assert len(tab.changed_lines()) == 1


def test_stock_servertab_refuses_bad_names():
    with pytest.raises(ValueError):
        stock_servertab('exa"mple.jp')


# -- catalogs --------------------------------------------------------------------------

def _all_msgs() -> list[Msg]:
    msgs: list[Msg] = []
    for var in TLS_VARIABLES:
        msgs.append(var.summary)
        for value in (None, "", "0", "1", "5", "LOGIN", "WantTLS,MailAuth,x"):
            msgs.append(var.meaning(value))
    samples = [
        b"", b'"EnableSMTP-TLS"\t"0"\n"EnablePOP3-TLS"\t"0"\n"EnableCTRL-TLS"\t"0"\n"SmtpNoTLSAuths"\t""\n',
        b'"EnablePOP3-TLS"\t"0"\n"SmtpConfig"\t"WantTLS,bad"\n"SmtpNoTLSAuths"\t"A,B"\n',
        b'\xef\xbb\xbf"SSLWantCert"\t"1"\n"sslwantverify"\t"x"\n"SSLWantCert"\t"1"\n"SSLMaxCertsDepth"\t"z"\n',
        b'"SSLUseCertsDir"\t"1"\n"EnableSMTP-TLS"\t"0"\n"SmtpConfig"\t"WantTLS"\n',
    ]
    for data in samples:
        for issue in tls_inconsistencies(ServerTab.parse(data)):
            msgs.append(issue.msg)
            if issue.fix is not None:
                msgs.append(issue.fix)
    return msgs


def test_every_message_exists_and_renders_in_both_languages():
    msgs = _all_msgs()
    codes = {m.key.split(".")[2] for m in msgs if m.key.startswith("servertab.issue.")}
    assert len(codes) >= 14  # the samples above reach nearly every issue
    for msg in msgs:
        for lang in LANGUAGES:
            assert msg.key in catalog(lang), msg.key
            text = msg.render(lang)
            assert "{" not in text, (msg.key, lang, text)


def test_every_literal_key_in_the_module_is_in_both_catalogs():
    source = Path(servertab.__file__).read_text(encoding="utf-8")
    keys = set(re.findall(r'"(servertab\.[a-z_.]+[a-z])"', source))
    assert len(keys) > 30
    for key in keys:
        for lang in LANGUAGES:
            assert key in catalog(lang), (lang, key)
            if key.startswith("servertab.issue.") and key != "servertab.issue.want_cert_implies":
                assert key + ".fix" in catalog(lang), (lang, key)

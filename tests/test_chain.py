"""Chains: leaf detection, ordering by signature, diagnosis, host names, trust."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path

import idna
import pytest

import pki
from xmailnb.pki import chain
from xmailnb.pki.certfiles import cert_fingerprint
from xmailnb.pki.chain import (
    check_order,
    covers_hostname,
    describe,
    hostnames,
    is_ca,
    is_self_signed,
    issued_by,
    plan_chain,
    public_roots,
    verify_trust,
)
from xmailnb.errors import InputError
from xmailnb.i18n import catalog


@pytest.fixture(scope="module")
def h() -> pki.Hierarchy:
    return pki.hierarchy(sans=["mail.example.jp", "example.jp"])


@pytest.fixture(scope="module")
def other() -> pki.Hierarchy:
    """A second hierarchy whose CAs carry the same names as ``h``'s."""
    return pki.hierarchy("mail.example.com")


def fps(certs) -> list[str]:
    return [cert_fingerprint(c) for c in certs]


def refused(key: str, certs, **kw) -> InputError:
    with pytest.raises(InputError) as info:
        plan_chain(certs, **kw)
    assert info.value.msg.key == key
    assert info.value.fix is not None
    return info.value


# -- single certificates -------------------------------------------------------

def test_basic_predicates(h):
    assert is_ca(h.root.cert) and is_ca(h.intermediate.cert) and not is_ca(h.leaf.cert)
    assert is_self_signed(h.root.cert) and not is_self_signed(h.intermediate.cert)
    assert issued_by(h.leaf.cert, h.intermediate.cert)
    assert not issued_by(h.leaf.cert, h.root.cert)
    assert not issued_by(h.intermediate.cert, h.leaf.cert)


def test_same_name_other_key_is_not_the_issuer(h, other):
    assert other.intermediate.cert.subject == h.intermediate.cert.subject
    assert not issued_by(h.leaf.cert, other.intermediate.cert)


# -- planning ------------------------------------------------------------------

@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_any_order_gives_the_same_plan(h, order):
    given = [[h.leaf.cert, h.intermediate.cert, h.root.cert][i] for i in order]
    plan = plan_chain(given)
    assert fps([plan.leaf]) == fps([h.leaf.cert])
    assert fps(plan.intermediates) == fps([h.intermediate.cert])
    assert fps([plan.root]) == fps([h.root.cert])
    assert plan.complete and plan.anchor == "given" and plan.unrelated == []


def test_deep_chain_reversed():
    r = pki.root()
    i1 = r.sign("Policy CA", ca=True)
    i2 = i1.sign("Issuing CA", ca=True)
    leaf = i2.sign("mail.example.jp")
    plan = plan_chain([r.cert, i1.cert, i2.cert, leaf.cert])
    assert fps(plan.intermediates) == fps([i2.cert, i1.cert])  # leaf's issuer first
    assert plan.complete


def test_duplicates_are_harmless(h):
    plan = plan_chain([h.leaf.cert, h.intermediate.cert, h.leaf.cert, h.intermediate.cert])
    assert len(plan.intermediates) == 1


def test_missing_intermediate_is_incomplete_not_an_error(h):
    plan = plan_chain([h.leaf.cert], anchors={"certs.pem": [h.root.cert]})
    assert not plan.complete and plan.anchor is None and plan.intermediates == []
    stray = h.intermediate.sign("stray.example.jp")
    plan = plan_chain([stray.cert], anchors={"public": public_roots()})
    assert not plan.complete


def test_chain_up_to_an_intermediate_is_complete(h):
    # The root is the clients' business; whether they trust it is verify_trust's.
    plan = plan_chain([h.leaf.cert, h.intermediate.cert])
    assert plan.complete and plan.root is None and plan.anchor is None


def test_last_issuer_found_in_anchors(h):
    anchors = {"public": public_roots(), "certs.pem": [h.root.cert]}
    plan = plan_chain([h.intermediate.cert, h.leaf.cert], anchors=anchors)
    assert plan.complete and plan.anchor == "certs.pem" and plan.root is None


def test_leaf_given_explicitly(h):
    plan = plan_chain([h.intermediate.cert], leaf=h.leaf.cert)
    assert fps([plan.leaf]) == fps([h.leaf.cert])
    assert fps(plan.intermediates) == fps([h.intermediate.cert])


def test_ca_given_as_leaf(h):
    err = refused("chain.leaf.is_ca", [h.root.cert])
    assert err.field == "cert"
    err = refused("chain.leaf.is_ca", [h.root.cert, h.intermediate.cert])
    assert err.msg.params["subject"] == h.intermediate.cert.subject.rfc4514_string()
    assert "CA" in err.msg.render("ja")


def test_several_leaves(h, other):
    err = refused("chain.leaf.several", [h.leaf.cert, other.leaf.cert, h.intermediate.cert])
    assert err.msg.params["count"] == 2
    assert "mail.example.com" in err.msg.render("en") and "mail.example.jp" in err.msg.render("en")


def test_intermediate_of_another_chain(h, other):
    # Same name as the right intermediate, other key: the classic wrong download.
    err = refused("chain.wrong_issuer", [h.leaf.cert, other.intermediate.cert])
    assert err.msg.params["subject"] == other.intermediate.cert.subject.rfc4514_string()
    assert err.msg.params["child"] == h.leaf.cert.subject.rfc4514_string()
    assert err.field == "chain"


def test_unrelated_extra_certificate_is_left_out(h):
    # Clients ignore a certificate that is not on the path; so does the plan
    # (issue #11: it used to be refused).
    stranger = pki.root("Some Other Root CA")
    plan = plan_chain([h.leaf.cert, h.intermediate.cert, stranger.cert])
    assert fps(plan.intermediates) == fps([h.intermediate.cert])
    assert fps(plan.unrelated) == fps([stranger.cert])


def test_leaf_of_another_chain_with_leaf_given_is_left_out(h):
    sibling = h.intermediate.sign("old.example.jp")
    plan = plan_chain([h.leaf.cert, h.intermediate.cert, sibling.cert], leaf=h.leaf.cert)
    assert fps(plan.unrelated) == fps([sibling.cert]) and plan.complete


def test_cross_signed_variant_is_left_out(h):
    bridge = pki.root("Bridge Root")
    cross = bridge.sign("xmailnb Test Intermediate CA", ca=True, key=h.intermediate.key)
    plan = plan_chain([cross.cert, h.leaf.cert, h.intermediate.cert, h.root.cert])
    assert fps(plan.intermediates) == fps([h.intermediate.cert])
    assert fps(plan.unrelated) == fps([cross.cert])
    assert plan.complete and plan.anchor == "given"


def test_self_signed_server_certificate():
    ss = pki.self_signed_leaf()
    plan = plan_chain([ss.cert])
    assert plan.leaf is not None and plan.root is None and plan.intermediates == []
    assert plan.complete and plan.anchor == "given"


def test_self_signed_server_certificate_marked_ca():
    # `openssl req -x509` sets cA=TRUE by default; it still names the host.
    ss = pki._build("mail.example.jp", sans=["mail.example.jp"], ca=True, key=pki.new_key(), issuer=None,
                    not_before=None, not_after=None, days=30, hash_alg=None)
    plan = plan_chain([ss.cert])
    assert fps([plan.leaf]) == fps([ss.cert]) and plan.root is None and plan.complete
    assert check_order([ss.cert]) == []


# -- diagnosing server.cert as written -----------------------------------------

def codes(certs) -> list[str]:
    return [i.code for i in check_order(certs)]


def test_check_order_good(h):
    assert codes([h.leaf.cert, h.intermediate.cert]) == []
    assert codes([h.leaf.cert, h.intermediate.cert, h.root.cert]) == []
    assert codes([h.leaf.cert]) == []
    assert codes([pki.self_signed_leaf().cert]) == []


def test_check_order_reversed(h):
    issues = check_order([h.root.cert, h.intermediate.cert, h.leaf.cert])
    assert [i.code for i in issues] == ["order"]
    assert issues[0].msg.params["leaf"] == h.leaf.cert.subject.rfc4514_string()
    assert "server.cert" in issues[0].msg.render("ja")


def test_check_order_duplicate(h):
    assert codes([h.leaf.cert, h.intermediate.cert, h.intermediate.cert]) == ["duplicate"]


def test_check_order_bad_link(h, other):
    issues = check_order([h.leaf.cert, other.intermediate.cert])
    assert [i.code for i in issues] == ["bad_link"]
    assert issues[0].msg.params["position"] == 2


def test_check_order_ca_first(h):
    assert codes([h.intermediate.cert, h.root.cert]) == ["first_is_ca"]
    assert codes([h.root.cert]) == ["first_is_ca"]


# -- host names ----------------------------------------------------------------

def test_hostnames(h):
    assert hostnames(h.leaf.cert) == ["mail.example.jp", "example.jp"]
    ipcert = h.intermediate.sign("mail.example.jp", sans=["mail.example.jp", "192.0.2.10", "2001:db8::1"])
    assert hostnames(ipcert.cert) == ["mail.example.jp", "192.0.2.10", "2001:db8::1"]
    nosan = h.intermediate.sign("legacy.example.jp", sans=[])
    assert hostnames(nosan.cert) == ["legacy.example.jp"]


def test_wildcard(h):
    wild = h.intermediate.sign("*.example.jp", sans=["*.example.jp"])
    assert covers_hostname(wild.cert, "mail.example.jp")
    assert covers_hostname(wild.cert, "MAIL.Example.JP.")
    assert not covers_hostname(wild.cert, "a.mail.example.jp")
    assert not covers_hostname(wild.cert, "example.jp")


def test_exact_names(h):
    assert covers_hostname(h.leaf.cert, "mail.example.jp")
    assert covers_hostname(h.leaf.cert, "example.jp")
    assert not covers_hostname(h.leaf.cert, "smtp.example.jp")
    assert not covers_hostname(h.leaf.cert, "")


def test_idn_hostname(h):
    unicode_name = "メール.例え.jp"
    ascii_name = idna.encode(unicode_name, uts46=True).decode()
    cert = h.intermediate.sign(ascii_name, sans=[ascii_name]).cert
    assert covers_hostname(cert, unicode_name)
    assert covers_hostname(cert, ascii_name)
    assert not covers_hostname(cert, "例え.jp")


def test_ip_address(h):
    cert = h.intermediate.sign("mail.example.jp", sans=["mail.example.jp", "192.0.2.10"]).cert
    assert covers_hostname(cert, "192.0.2.10")
    assert not covers_hostname(cert, "192.0.2.11")
    # An IP written only as a DNS name does not count.
    dnsip = h.intermediate.sign("x", sans=["mail.example.jp"]).cert
    assert not covers_hostname(dnsip, "192.0.2.10")


def test_common_name_alone_covers_nothing(h):
    nosan = h.intermediate.sign("mail.example.jp", sans=[])
    assert not covers_hostname(nosan.cert, "mail.example.jp")


# -- trust ---------------------------------------------------------------------

def test_public_roots():
    roots = public_roots()
    assert len(roots) > 50
    assert all(is_ca(c) for c in roots[:10])
    assert fps(public_roots()[:3]) == fps(roots[:3])


def test_trusted_by_test_root(h):
    result = verify_trust(h.leaf.cert, [h.intermediate.cert],
                          anchors={"public": public_roots(), "certs.pem": [h.root.cert]})
    assert result.trusted and result.anchor == "certs.pem" and result.reason is None
    assert not result.self_signed


def test_trusted_with_root_included(h):
    result = verify_trust(h.leaf.cert, [h.intermediate.cert, h.root.cert], anchors={"given": [h.root.cert]})
    assert result.trusted and result.anchor == "given"


def test_untrusted_against_empty_anchors(h):
    result = verify_trust(h.leaf.cert, [h.intermediate.cert], anchors={})
    assert not result.trusted and result.anchor is None
    assert result.reason.key == "chain.trust.unknown_issuer"
    result = verify_trust(h.leaf.cert, [h.intermediate.cert, h.root.cert], anchors={"public": []})
    assert result.reason.key == "chain.trust.untrusted_root"


def test_untrusted_against_public_roots(h):
    result = verify_trust(h.leaf.cert, [h.intermediate.cert], anchors={"public": public_roots()})
    assert not result.trusted
    assert result.reason.key == "chain.trust.unknown_issuer"
    assert result.reason.params["issuer"] == h.root.cert.subject.rfc4514_string()


def test_missing_intermediate_is_untrusted(h):
    result = verify_trust(h.leaf.cert, [], anchors={"certs.pem": [h.root.cert]})
    assert not result.trusted and result.reason.key == "chain.trust.unknown_issuer"


def test_expired_leaf_reason(h):
    old = h.intermediate.sign("mail.example.jp", not_before=pki.now() - dt.timedelta(days=100), days=10)
    result = verify_trust(old.cert, [h.intermediate.cert], anchors={"public": public_roots(),
                                                                    "certs.pem": [h.root.cert]})
    assert not result.trusted
    assert result.reason.key == "chain.trust.expired"
    assert result.reason.params["subject"] == old.cert.subject.rfc4514_string()
    # A calendar day, shown in local time
    assert result.reason.params["date"] == old.cert.not_valid_after_utc.astimezone().date()
    # Also when judged at a later time, and with nothing to verify against.
    later = pki.now() + dt.timedelta(days=400)
    assert verify_trust(h.leaf.cert, [h.intermediate.cert], anchors={"certs.pem": [h.root.cert]},
                        at=later).reason.key == "chain.trust.expired"
    assert verify_trust(old.cert, [h.intermediate.cert], anchors={}).reason.key == "chain.trust.expired"


def test_not_yet_valid(h):
    future = h.intermediate.sign("mail.example.jp", not_before=pki.now() + dt.timedelta(days=3))
    result = verify_trust(future.cert, [h.intermediate.cert], anchors={"certs.pem": [h.root.cert]})
    assert result.reason.key == "chain.trust.not_yet_valid"


def test_self_signed_reason():
    ss = pki.self_signed_leaf()
    result = verify_trust(ss.cert, [], anchors={"public": public_roots()})
    assert not result.trusted and result.self_signed and result.reason.key == "chain.trust.self_signed"


def test_hostname_mismatch_reason(h):
    anchors = {"certs.pem": [h.root.cert]}
    assert verify_trust(h.leaf.cert, [h.intermediate.cert], anchors=anchors, hostname="mail.example.jp").trusted
    result = verify_trust(h.leaf.cert, [h.intermediate.cert], anchors=anchors, hostname="smtp.example.jp")
    assert not result.trusted and result.reason.key == "chain.trust.hostname"


def test_wildcard_and_no_san(h):
    anchors = {"certs.pem": [h.root.cert]}
    wild = h.intermediate.sign("*.example.jp", sans=["*.example.jp"])
    assert verify_trust(wild.cert, [h.intermediate.cert], anchors=anchors).trusted
    nosan = h.intermediate.sign("mail.example.jp", sans=[])
    result = verify_trust(nosan.cert, [h.intermediate.cert], anchors=anchors)
    assert not result.trusted and result.reason.key == "chain.trust.no_san"


def test_reasons_render_without_library_text(h):
    result = verify_trust(h.leaf.cert, [], anchors={"public": public_roots()})
    for lang in ("en", "ja"):
        text = result.reason.render(lang)
        assert "validation failed" not in text and "{" not in text


# -- description ---------------------------------------------------------------

def test_describe(h):
    d = describe(h.leaf.cert)
    assert d["subject"] == "CN=mail.example.jp,O=xmailnb tests"
    assert d["issuer"] == h.intermediate.cert.subject.rfc4514_string()
    assert d["sans"] == ["mail.example.jp", "example.jp"]
    assert d["sha256"] == cert_fingerprint(h.leaf.cert)
    assert d["key"] == "RSA 2048" and d["is_ca"] is False and d["self_signed"] is False
    assert dt.datetime.fromisoformat(d["not_after"]) == h.leaf.cert.not_valid_after_utc
    assert d["not_before"].endswith("+00:00")
    r = describe(h.root.cert)
    assert r["is_ca"] and r["self_signed"] and r["sans"] == []
    ec_leaf = h.intermediate.sign("mail.example.jp", key_kind="ec")
    assert describe(ec_leaf.cert)["key"] == "EC P-256"


def test_every_message_key_is_in_both_catalogs():
    source = Path(chain.__file__).read_text(encoding="utf-8")
    keys = set(re.findall(r'"(chain\.[a-z0-9_.]+)"', source))
    assert len(keys) > 15
    fixed = {"chain.leaf.is_ca", "chain.leaf.several", "chain.wrong_issuer"}
    for lang in ("en", "ja"):
        cat = catalog(lang)
        for key in keys | {k + ".fix" for k in fixed}:
            assert key in cat, (lang, key)


# -- the one judge (issue #11) -------------------------------------------------

import x509lab as lab  # noqa: E402
from cryptography import x509  # noqa: E402
from xmailnb.pki.chain import Reason, Rule, display_name, judge  # noqa: E402


@pytest.fixture
def corpus_root(frozen_now):
    root = lab.make("Judge Root", ca=True, at=frozen_now, eku=None, sans=None, not_after=dt.timedelta(days=3650))
    inter = lab.make("Judge Intermediate", issuer=root, ca=True, at=frozen_now, eku=None, sans=None)
    return root, inter


def test_reasons_are_types_not_keys(corpus_root, frozen_now):
    from cryptography.x509.oid import ExtendedKeyUsageOID

    root, inter = corpus_root
    client = lab.make("mail.example.jp", issuer=inter, at=frozen_now, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    verdict = judge(client.cert, [inter.cert], anchors={"ca": [root.cert]}, hostname="mail.example.jp")
    assert not verdict.trusted and verdict.anchor_known
    assert verdict.problem.reason is Reason.NOT_SERVER
    result = verify_trust(client.cert, [inter.cert], anchors={"ca": [root.cert]})
    assert result.problem.reason is Reason.NOT_SERVER
    assert "validation failed" not in result.reason.render("en")


def test_not_after_instant_is_still_valid(corpus_root, frozen_now):
    # RFC 5280 4.1.2.5: valid "through" notAfter; the old code expired it a second early.
    root, inter = corpus_root
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now, not_after=dt.timedelta(0))
    assert judge(leaf.cert, [inter.cert], anchors={"ca": [root.cert]}, at=frozen_now).trusted
    later = frozen_now + dt.timedelta(seconds=1)
    verdict = judge(leaf.cert, [inter.cert], anchors={"ca": [root.cert]}, at=later)
    assert verdict.problem.reason is Reason.EXPIRED


def test_expired_cross_sign_is_left_out_not_fatal(frozen_now):
    old = lab.make("Old Root", ca=True, at=frozen_now, eku=None, sans=None)
    key = lab.key_for("judge-new-root")
    new = lab.make("New Root", ca=True, key=key, at=frozen_now, eku=None, sans=None)
    cross = lab.make("New Root", issuer=old, ca=True, key=key, at=frozen_now, eku=None, sans=None,
                     not_after=dt.timedelta(days=-1))
    inter = lab.make("Issuing CA", issuer=new, ca=True, at=frozen_now, eku=None, sans=None)
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now)
    verdict = judge(leaf.cert, [cross.cert, inter.cert], anchors={"certs.pem": [new.cert]},
                    hostname="mail.example.jp")
    assert verdict.trusted and verdict.problem is None
    assert fps(verdict.served) == fps([leaf.cert, inter.cert])
    assert fps(verdict.left_out) == fps([cross.cert])


def test_unknown_anchor_still_names_intrinsic_defects(frozen_now):
    from cryptography.x509.oid import ExtendedKeyUsageOID

    private = lab.make("Nobody's Root", ca=True, at=frozen_now, eku=None, sans=None)
    client = lab.make("mail.example.jp", issuer=private, at=frozen_now, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    verdict = judge(client.cert, [private.cert], anchors={"public": public_roots()})
    assert verdict.problem.reason is Reason.NOT_SERVER and verdict.anchor_known
    good = lab.make("mail.example.jp", issuer=private, at=frozen_now)
    verdict = judge(good.cert, [private.cert], anchors={"public": public_roots()})
    assert verdict.problem.reason is Reason.UNTRUSTED_ROOT and not verdict.anchor_known


def test_given_anchor_that_the_chain_misses_is_a_refusal(corpus_root, frozen_now):
    root, inter = corpus_root
    other = lab.make("Other Root", ca=True, at=frozen_now, eku=None, sans=None)
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now)
    verdict = judge(leaf.cert, [inter.cert, root.cert], anchors={"ca": [other.cert]}, required=["ca"])
    assert verdict.problem.reason is Reason.NOT_GIVEN_ANCHOR and verdict.anchor_known
    assert "Other Root" in verdict.problem.msg.render("en")


def test_rules_clients_do_not_enforce_are_warnings(corpus_root, frozen_now):
    root, inter = corpus_root
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now, eku=None, aki=None)
    verdict = judge(leaf.cert, [inter.cert], anchors={"ca": [root.cert]}, hostname="mail.example.jp")
    assert verdict.trusted and verdict.problem is None
    assert {w.rule for w in verdict.warnings} == {Rule.NO_EKU, Rule.NO_AKI}


@pytest.mark.parametrize("defect", ["v1", "long-serial", "critical-extension"])
def test_host_name_match_ignores_other_defects(corpus_root, frozen_now, defect):
    # Issue #11: a defect other than the name was told as "does not cover the
    # mail host name X; it covers: X".
    root, inter = corpus_root
    unknown = x509.ObjectIdentifier("1.3.6.1.4.1.55555.9")
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now,
                    extra=[(x509.UnrecognizedExtension(unknown, b"\x05\x00"), True)]
                    if defect == "critical-extension" else ())
    if defect == "long-serial":
        leaf = lab.resign(leaf, inter, lab.set_serial(b"\x01" * 21))
    if defect == "v1":
        assert not covers_hostname(lab.resign(lab.make("mail.example.jp", issuer=inter, at=frozen_now, ku=None,
                                                       eku=None, sans=None, ski=None, aki=None, ca=None),
                                              inter, lambda f: f[1:]).cert, "mail.example.jp")
        return
    assert covers_hostname(leaf.cert, "mail.example.jp")
    verdict = judge(leaf.cert, [inter.cert], anchors={"ca": [root.cert]}, hostname="mail.example.jp")
    assert verdict.problem.reason is {"long-serial": Reason.SERIAL,
                                      "critical-extension": Reason.CRITICAL_EXTENSION}[defect]


def test_empty_names_are_shown_as_empty(frozen_now):
    empty = lab.make(None, ca=True, at=frozen_now, eku=None, sans=None, org=None)
    assert display_name(empty.cert.subject).render("en") == "(empty name)"
    assert display_name(empty.cert.subject).render("ja") == "（名前なし）"
    assert describe(empty.cert, "ja")["subject"] == "（名前なし）"
    assert describe(empty.cert)["issuer"] == "(empty name)"
    leaf = lab.make("mail.example.jp", issuer=empty, at=frozen_now)
    result = verify_trust(leaf.cert, [], anchors={})
    assert result.problem.reason is Reason.EMPTY_NAME
    for lang, shown in (("en", "(empty name)"), ("ja", "（名前なし）")):
        text = result.reason.render(lang)
        assert shown in text and ", ," not in text and "{" not in text


def test_public_suffix_wildcards(corpus_root, frozen_now):
    root, inter = corpus_root
    for pattern, host, refused_ in (("*.co.jp", "example.co.jp", True), ("*.jp", "example.jp", True),
                                    ("*.example.co.jp", "mail.example.co.jp", False)):
        leaf = lab.make(pattern, issuer=inter, at=frozen_now)
        verdict = judge(leaf.cert, [inter.cert], anchors={"ca": [root.cert]}, hostname=host)
        assert (verdict.problem is not None and verdict.problem.reason is Reason.WILDCARD) == refused_, pattern

"""Property-based tests: the loaders never crash, whatever they are fed.

They either return what they found or raise the documented error type
(:class:`~xmailnb.errors.InputError`), for arbitrary bytes and for
mutations of real PEM, DER, PKCS#7 and PKCS#12 files.
"""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pki
from helpers import sandbox_copy
from xmailnb.flows import actions
from xmailnb.pki import certfiles
from xmailnb.errors import InputError
from xmailnb.mailroot.layout import MailRoot

pytestmark = pytest.mark.slow  # hypothesis

H = pki.hierarchy()
SAMPLES = [
    H.chain_pem, H.leaf.der, H.leaf.key_pem(), H.leaf.key_pem(traditional=False),
    H.leaf.key_pem(password=b"pw"), H.p7b(), H.p7b(der=True), H.p12(b"secret"), H.p12(None),
]
LOADERS = [
    lambda d: certfiles.load_material(d, name="x"),
    lambda d: certfiles.load_material(d, name="x", passphrase=b"secret"),
    lambda d: certfiles.certificates_from(d, name="x"),
    lambda d: certfiles.private_key_from(d, name="x"),
    lambda d: certfiles.private_key_from(d, name="x", passphrase=b"pw"),
    lambda d: certfiles.csr_from(d, name="x"),
]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mutate(data: bytes, position: int, replacement: bytes, cut: int) -> bytes:
    position %= max(len(data), 1)
    return (data[:position] + replacement + data[position + cut:])


def _never_crash(data: bytes) -> None:
    for load in LOADERS:
        try:
            load(data)
        except InputError as exc:
            assert exc.msg.render("ja") and exc.msg.render("en")


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data):
    _never_crash(data)


@FAST
@given(st.sampled_from(SAMPLES), st.integers(min_value=0), st.binary(max_size=40), st.integers(0, 200))
def test_mutated_real_files(sample, position, replacement, cut):
    _never_crash(_mutate(sample, position, replacement, cut))


@FAST
@given(st.lists(st.sampled_from([b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n",
                                 b"-----BEGIN RSA PRIVATE KEY-----\n", b"Proc-Type: 4,ENCRYPTED\n",
                                 b"-----BEGIN PKCS7-----\n", b"MIIB\n", b"\r\n", b"\xef\xbb\xbf", b"==\n",
                                 b"-----END PKCS7-----\n", b"garbage\n"]), max_size=30))
def test_pem_shaped_noise(parts):
    _never_crash(b"".join(parts))


@pytest.fixture(scope="module")
def mr(tmp_path_factory):
    target = tmp_path_factory.mktemp("prop") / "MailRoot"
    sandbox_copy(target)
    return MailRoot(target)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.integers(min_value=0), st.binary(max_size=20), st.integers(0, 50))
def test_install_planning_refuses_cleanly(mr, sample, position, replacement, cut):
    data = _mutate(sample, position, replacement, cut)
    try:
        actions.plan_install(mr, actions.Upload(data, "upload"), passphrase=b"secret")
    except InputError as exc:
        assert exc.field in ("cert", "chain", "key", "ca", "hostname")

"""Mutated certificate bytes never end in an internal error or an empty --json.

A mutation loop (bit flips, truncations, length-byte changes, swapped tags,
spliced bytes) over the DER of a real chain, bounded in time, feeds each
result to ``install --dry-run --json`` and ``diagnose --json``.  Every run
must print exactly one JSON document and exit 0 or 1.  A Hypothesis test
does the same with shrinking, over a smaller budget.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import time
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pki
from helpers import sandbox_copy
from xmailnb.cli.main import main

pytestmark = pytest.mark.slow  # hypothesis over mutated certificates

BUDGET_SECONDS = 12.0


@pytest.fixture(scope="module")
def chain():
    return pki.hierarchy(sans=["mail.example.jp"])


@pytest.fixture(scope="module")
def mailroot(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "MailRoot"
    sandbox_copy(path)
    return path


def _run(*argv: str) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the product would surface here
        code = main(list(argv), stdout=out, stderr=err)
    text = out.getvalue()
    doc = json.loads(text)  # exactly one document: json.loads refuses trailing data
    return code, doc, err.getvalue()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(b)) if b else 0
        if op == 0 and b:  # flip a bit
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # overwrite a byte (lengths and tags are bytes too)
            b[pos] = rng.randrange(256)
        elif op == 2:  # truncate
            del b[pos:]
        elif op == 3 and b:  # drop a run
            del b[pos:pos + rng.randint(1, 16)]
        elif op == 4:  # insert a run
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 5 and len(b) > 40:  # duplicate a slice (e.g. an extension)
            start = rng.randrange(len(b) - 20)
            b[pos:pos] = b[start:start + rng.randint(4, 40)]
    return bytes(b)


def _check(mailroot, cert_bytes: bytes, chain_bytes: bytes, key_pem: bytes, tmp_path, i: int) -> None:
    cert, chain, key = (tmp_path / f"c{i}.der"), (tmp_path / f"i{i}.der"), (tmp_path / "key.pem")
    cert.write_bytes(cert_bytes)
    chain.write_bytes(chain_bytes)
    key.write_bytes(key_pem)
    code, doc, err = _run("install", "--dry-run", "--json", "--mailroot", str(mailroot), "--hostname",
                          "mail.example.jp", "--cert", str(cert), "--chain", str(chain), "--key", str(key))
    assert code in (0, 1), (code, err)
    assert "internal error" not in err.lower(), err
    assert ("error" in doc) == (code != 0), doc
    if code:
        assert doc["error"]["key"] != "cli.internal", doc


def test_mutated_certificates_always_answer(chain, mailroot, tmp_path):
    rng = random.Random(11)
    deadline = time.monotonic() + BUDGET_SECONDS
    runs = 0
    key = chain.leaf.key_pem()
    while time.monotonic() < deadline and runs < 3000:
        target = rng.randrange(2)
        leaf, inter = chain.leaf.der, chain.intermediate.der
        if target == 0:
            leaf = _mutate(rng, leaf)
        else:
            inter = _mutate(rng, inter)
        _check(mailroot, leaf, inter, key, tmp_path, runs % 8)
        runs += 1
    assert runs >= 50


def test_mutated_server_cert_diagnoses(chain, mailroot, tmp_path):
    """diagnose reads server.cert as it is: a damaged one is a finding, not a crash."""
    rng = random.Random(12)
    deadline = time.monotonic() + BUDGET_SECONDS / 2
    root = tmp_path / "MailRoot"
    shutil.copytree(mailroot, root)
    (root / "server.key").write_bytes(chain.leaf.key_pem())
    runs = 0
    while time.monotonic() < deadline and runs < 1500:
        data = _mutate(rng, chain.leaf.der) if rng.randrange(2) else chain.leaf.pem + _mutate(
            rng, chain.intermediate.pem)
        (root / "server.cert").write_bytes(data)
        code, doc, err = _run("diagnose", "--json", "--mailroot", str(root), "--hostname", "mail.example.jp")
        assert code in (0, 1), (code, err)
        assert "internal error" not in err.lower(), err
        assert {f["check"] for f in doc["findings"]} >= {"cert.present", "cert.trust"}
        runs += 1
    assert runs >= 20


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hypothesis_mutations(chain, mailroot, tmp_path, data):
    leaf = bytearray(chain.leaf.der)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(leaf) - 1))
        leaf[pos] = data.draw(st.integers(0, 255))
    _check(mailroot, bytes(leaf), chain.intermediate.der, chain.leaf.key_pem(), tmp_path, 0)

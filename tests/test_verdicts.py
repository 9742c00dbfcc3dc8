"""One judge for install, diagnose and the dashboard (issue #11)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID

import x509lab as lab
from helpers import run
from xmailnb.flows import actions
from xmailnb.cli import main as cli
from xmailnb.pki.chain import describe
from xmailnb.checks.diagnose import diagnose
from xmailnb.errors import InputError
from xmailnb.mailroot.resolve import resolve


@pytest.fixture
def pki_(frozen_now):
    root = lab.make("Verdict Root", ca=True, at=frozen_now, eku=None, sans=None, not_after=dt.timedelta(days=3650))
    inter = lab.make("Verdict Intermediate", issuer=root, ca=True, at=frozen_now, eku=None, sans=None)
    return root, inter


def _files(tmp_path: Path, **named: bytes) -> dict[str, str]:
    out = {}
    for name, data in named.items():
        (tmp_path / name).write_bytes(data)
        out[name] = str(tmp_path / name)
    return out


def _install(mailroot, tmp_path, leaf, chain, root, *extra):
    f = _files(tmp_path, leaf=leaf.pem, chain=b"".join(c.pem for c in chain), key=leaf.key_pem, ca=root.pem)
    return run("install", "--mailroot", str(mailroot), "--json", "--lang", "en", "--hostname", "mail.example.jp",
               "--cert", f["leaf"], "--chain", f["chain"], "--key", f["key"], "--ca", f["ca"], *extra)


def test_client_auth_only_certificate_is_refused_with_the_reason(mailroot, tmp_path, pki_, frozen_now):
    # Issue #11: install said "everything checks out" while diagnose knew better.
    root, inter = pki_
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    r = _install(mailroot, tmp_path, leaf, [inter], root, "--dry-run")
    assert r.code == 1
    error = r.json["error"]
    assert error["field"] == "cert" and "not issued for use by servers" in error["message"]
    assert error["fix"]


def test_expired_root_and_intermediate_point_at_the_ca_input(mailroot, tmp_path, pki_, frozen_now):
    root, inter = pki_
    old_root = lab.make("Old Root", ca=True, at=frozen_now, eku=None, sans=None, not_before=dt.timedelta(days=-900),
                        not_after=dt.timedelta(days=-1))
    inter2 = lab.make("Under Old Root", issuer=old_root, ca=True, at=frozen_now, eku=None, sans=None)
    leaf = lab.make("mail.example.jp", issuer=inter2, at=frozen_now)
    r = _install(mailroot, tmp_path, leaf, [inter2], old_root, "--dry-run")
    assert r.code == 1 and r.json["error"]["field"] == "ca", r.json
    assert "root" in r.json["error"]["fix"].lower()
    old_inter = lab.make("Old Intermediate", issuer=root, ca=True, at=frozen_now, eku=None, sans=None,
                         not_before=dt.timedelta(days=-400), not_after=dt.timedelta(days=-1))
    leaf = lab.make("mail.example.jp", issuer=old_inter, at=frozen_now)
    r = _install(mailroot, tmp_path, leaf, [old_inter], root, "--dry-run")
    assert r.code == 1 and r.json["error"]["field"] == "chain"
    assert "intermediate" in r.json["error"]["fix"].lower()


def test_expired_cross_sign_and_extras_are_left_out(mailroot, tmp_path, pki_, frozen_now):
    root, inter = pki_
    other = lab.make("Some Other Root", ca=True, at=frozen_now, eku=None, sans=None)
    cross = lab.make("Verdict Root", issuer=other, key=root.key, ca=True, at=frozen_now, eku=None, sans=None,
                     not_after=dt.timedelta(days=-2))
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now)
    r = _install(mailroot, tmp_path, leaf, [cross, other, inter], root)
    assert r.code == 0, r.err
    plan = r.json["plan"]
    assert [c["sha256"] for c in plan["left_out"]] == [c["sha256"] for c in (
        describe(cross.cert), describe(other.cert))]
    assert (mailroot / "server.cert").read_bytes() == leaf.pem + inter.pem  # leaf first, root left out
    assert "Left out: " in r.err


def test_notafter_instant_installs_and_diagnoses_as_valid(mailroot, tmp_path, pki_, frozen_now):
    root, inter = pki_
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now, not_after=dt.timedelta(0))
    r = _install(mailroot, tmp_path, leaf, [inter], root)
    assert r.code == 0, r.err
    report = diagnose(resolve(mailroot), hostname="mail.example.jp")
    assert report.by_check("cert.validity").status != "error"
    later = frozen_now + dt.timedelta(seconds=1)
    assert diagnose(resolve(mailroot), hostname="mail.example.jp", at=later).by_check("cert.validity").status \
        == "error"


def test_diagnose_and_install_agree(mailroot, tmp_path, pki_, frozen_now):
    """The same chain in certs.pem-anchored server.cert: diagnose's cert.trust
    errors exactly when install refuses for a reason other than validity."""
    root, inter = pki_
    (mailroot / "certs.pem").write_bytes(root.pem)
    leaves = {
        "good": lab.make("mail.example.jp", issuer=inter, at=frozen_now),
        "client-only": lab.make("mail.example.jp", issuer=inter, at=frozen_now,
                                eku=[ExtendedKeyUsageOID.CLIENT_AUTH]),
        "wildcard-suffix": lab.make("*.co.jp", issuer=inter, at=frozen_now),
        "aki-mismatch": lab.make("mail.example.jp", issuer=inter, at=frozen_now, aki=b"\x01" * 20),
    }
    for name, leaf in leaves.items():
        (mailroot / "server.cert").write_bytes(leaf.pem + inter.pem)
        (mailroot / "server.key").write_bytes(leaf.key_pem)
        finding = diagnose(resolve(mailroot), hostname="example.co.jp" if "suffix" in name else None) \
            .by_check("cert.trust")
        try:
            actions.plan_install(resolve(mailroot), actions.Upload(leaf.pem + inter.pem, "c.pem"),
                                 key=actions.Upload(leaf.key_pem, "k.pem"),
                                 hostname="example.co.jp" if "suffix" in name else "mail.example.jp")
            refused = False
        except InputError:
            refused = True
        assert refused == (finding.status == "error"), (name, finding)
        assert refused == (name != "good"), name


def test_host_name_message_only_when_the_name_is_the_problem(mailroot, pki_, frozen_now):
    root, inter = pki_
    (mailroot / "certs.pem").write_bytes(root.pem)
    long_serial = lab.resign(lab.make("mail.example.jp", issuer=inter, at=frozen_now), inter,
                             lab.set_serial(b"\x01" * 21))
    v1 = lab.resign(lab.make("mail.example.jp", issuer=inter, at=frozen_now, ku=None, eku=None, sans=None, ski=None,
                             aki=None, ca=None), inter, lambda f: f[1:])
    for cert, expect in ((long_serial, "diagnose.cert.hostname.ok"), (v1, "diagnose.cert.hostname.version")):
        (mailroot / "server.cert").write_bytes(cert.pem + inter.pem)
        finding = diagnose(resolve(mailroot), hostname="mail.example.jp").by_check("cert.hostname")
        assert finding.message.key == expect
        assert "it covers" not in finding.message.render("en")
    (mailroot / "server.cert").write_bytes(long_serial.pem + inter.pem)
    trust = diagnose(resolve(mailroot), hostname="mail.example.jp").by_check("cert.trust")
    assert trust.status == "error" and "serial number" in trust.message.render("en")


def test_dry_run_says_would_be_installed(mailroot, tmp_path, pki_, frozen_now):
    root, inter = pki_
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now)
    f = _files(tmp_path, leaf=leaf.pem, key=leaf.key_pem)
    r = run("install", "--mailroot", str(mailroot), "--lang", "en", "--hostname", "mail.example.jp", "--cert",
            f["leaf"], "--key", f["key"], "--allow-incomplete-chain", "--dry-run")
    assert r.code == 0, r.err
    assert "would be installed" in r.err and "Installed" not in r.err
    assert not (mailroot / "server.cert").exists()


def test_json_on_an_internal_error(monkeypatch):
    def broken(args, out):
        raise RuntimeError("boom")

    from xmailnb.cli import history as history_command

    monkeypatch.setattr(history_command, "run", broken)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["history", "--json"], stdout=out, stderr=err)
    assert code == 1
    doc = json.loads(out.getvalue())
    assert doc["error"]["key"] == "cli.internal" and doc["error"]["exit_code"] == 1
    assert "Traceback" not in err.getvalue()


def test_python_warnings_never_reach_the_terminal(mailroot, tmp_path, pki_, frozen_now, capfd):
    root, inter = pki_
    leaf = lab.resign(lab.make("mail.example.jp", issuer=inter, at=frozen_now), inter, lab.set_serial(b"\xf0\x01"))
    f = _files(tmp_path, leaf=leaf.pem, chain=inter.pem, key=leaf.key_pem, ca=root.pem)
    code = cli.main(["install", "--mailroot", str(mailroot), "--json", "--hostname", "mail.example.jp", "--cert",
                     f["leaf"], "--chain", f["chain"], "--key", f["key"], "--ca", f["ca"], "--dry-run"])
    captured = capfd.readouterr()
    assert code == 1 and "Warning" not in captured.err and ".py:" not in captured.err
    assert json.loads(captured.out)["error"]["key"] == "actions.chain.refused"


def test_dashboard_shows_the_reason_beside_the_input(mailroot, pki_, frozen_now):
    from xmailnb.ui import InstallStep
    from xmailnb.ui.install import upload_value

    root, inter = pki_
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    step = InstallStep(mailroot, lang="en")
    step.uploads["key"].value = upload_value(leaf.key_pem, "server.key")
    step.uploads["ca"].value = upload_value(root.pem, "root.pem")
    step.uploads["chain"].value = upload_value(inter.pem, "inter.pem")
    step.uploads["cert"].value = upload_value(leaf.pem, "server.crt")
    assert step.plan is None and "not issued for use by servers" in step.notes["cert"].value
    # A good certificate with an unrelated extra: the preview lists what is left out.
    good = lab.make("mail.example.jp", issuer=inter, at=frozen_now)
    stray = lab.make("Stray CA", ca=True, at=frozen_now, eku=None, sans=None)
    step.uploads["key"].value = upload_value(good.key_pem, "server.key")
    step.uploads["chain"].value = upload_value(inter.pem + stray.pem, "inter.pem")
    step.uploads["cert"].value = upload_value(good.pem, "server.crt")
    assert step.plan is not None, step.message.value
    assert "Stray CA" in step.preview_html.value and "Left out" in step.preview_html.value


def test_practice_root_is_an_anchor_in_a_practice_mailroot(mailroot):
    from helpers import CSR_ARGS

    from xmailnb.flows import practice

    assert run("csr", "--mailroot", str(mailroot), *CSR_ARGS).code == 0
    issued = practice.sign_pending_csr(resolve(mailroot))
    mr = resolve(mailroot)
    plan = actions.plan_install(mr, actions.Upload(issued.server.read_bytes(), "server.crt"),
                                [actions.Upload(issued.intermediate.read_bytes(), "intermediate.crt")],
                                hostname="mail.example.jp")
    assert plan.trust.trusted and plan.trust.anchor == "practice"
    assert [w.key for w in plan.warnings if w.key.startswith("actions.trust")] == ["actions.trust.practice"]
    actions.apply_install(mr, plan)
    assert diagnose(mr, hostname="mail.example.jp").by_check("cert.trust").details["anchor"] == "practice"


def test_unknown_key_algorithm_is_a_verdict_not_a_crash(mailroot, tmp_path, pki_, frozen_now):
    root, inter = pki_
    leaf = lab.make("mail.example.jp", issuer=inter, at=frozen_now)
    # ecPublicKey (1.2.840.10045.2.1) -> an algorithm nobody knows (…2.9), signed again.
    odd = lab.resign(leaf, inter, lab.replace_bytes(bytes.fromhex("06072a8648ce3d0201"),
                                                    bytes.fromhex("06072a8648ce3d0209")))
    with pytest.raises(UnsupportedAlgorithm):
        odd.cert.public_key()
    r = _install(mailroot, tmp_path, odd, [inter], root, "--dry-run")
    assert r.code == 1 and r.json["error"]["key"] == "actions.chain.refused"
    (mailroot / "server.cert").write_bytes(odd.pem + inter.pem)
    (mailroot / "server.key").write_bytes(leaf.key_pem)
    r = run("diagnose", "--mailroot", str(mailroot), "--json")
    assert r.code == 1 and "internal error" not in r.err.lower()
    findings = {f["check"]: f for f in r.json["findings"]}
    assert findings["cert.pair"]["status"] == "error"
    assert all(f["message"] for f in findings.values())

"""Free certificates through ACME (RFC 8555) for the pending CSR, and renewal.

The protocol itself is the certbot project's ``acme`` library; this module
adds what an XMail administrator needs around it: the account kept under
``sslconf/acme/``, a standalone http-01 responder that lives only for the
order, dns-01 records shown (or handed to a hook) and confirmed, every error
turned into a message that says what to do, and installation through the
same checks and store as ``xmailnb install``.

Nothing outside ``sslconf/acme/`` (and the store's archive of those files
and its audit log) changes unless the whole order succeeded.  What an order
used and how it went is recorded by :mod:`xmailnb.mailroot.acme_state`.
"""

from __future__ import annotations

import datetime as dt
import enum
import errno
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

import certifi
import dns.exception
import dns.resolver
import josepy as jose
import requests
from acme import challenges, client, crypto_util, messages, standalone
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import actions
from ..checks.renewal import renewal_due, renewal_finding
from ..mailroot.acme_state import (
    CHALLENGES,
    DEFAULT_RENEW_DAYS,
    LETSENCRYPT,
    LETSENCRYPT_STAGING,
    AcmeAttempt,
    AcmeSettings,
    AcmeStatus,
    AcmeSuccess,
    dump_json,
    json_doc,
    load_settings,
    load_status,
    parse_dns_server,
    update_status,
)
from ..mailroot.servertab import mail_hostname_of
from ..mailroot.store import Action, ArchiveEntry, Store
from ..pki import certfiles, keys
from .. import clock
from ..errors import InputError, UsageError, XmailnbError
from ..i18n import Msg, has
from ..mailroot.layout import (
    REL_ACME_ACCOUNT_KEY,
    REL_ACME_DIRECTORY_CA,
    REL_ACME_SETTINGS,
    MailRoot,
)
from ..pki import chain as chainmod
from ..pki import csr as csrmod

__all__ = [
    # The ACME flow's whole vocabulary in one place (the records live in
    # mailroot.acme_state, the renewal finding in checks.renewal).
    "LETSENCRYPT",
    "LETSENCRYPT_STAGING",
    "CHALLENGES",
    "DEFAULT_RENEW_DAYS",
    "AcmeSettings",
    "load_settings",
    "load_status",
    "renewal_due",
    "renewal_finding",
    "AcmeError",
    "TxtRecord",
    "Event",
    "EventKind",
    "AuthzStatus",
    "IssueResult",
    "RenewOutcome",
    "Http01Responder",
    "issue",
    "renew",
    "explain",
]

# Tunables (tests shorten them).
POLL_SECONDS = 1.0
ORDER_SECONDS = 300
DNS_CHECK_SECONDS = 300
HOOK_SECONDS = 300
NETWORK_TIMEOUT = 45
BAD_NONCE_RETRIES = 3
_ISSUED_KEPT = 20
_USER_AGENT = "xmailnb (acme-python)"


class AcmeError(InputError):
    """An ACME order or renewal failed; nothing was installed (exit 1)."""

    exit_code = 1



def _record_attempt(mr: MailRoot, action: str, *, error: XmailnbError | None = None,
                    leaf: x509.Certificate | None = None, days: int | None = None) -> None:
    attempt = AcmeAttempt(action=action, time=clock.now().isoformat(timespec="seconds"),
                          result="failed" if error else "ok",
                          error=error.msg.to_record() if error is not None else None,
                          fix=error.fix.to_record() if error is not None and error.fix is not None else None)

    def edit(status: AcmeStatus) -> AcmeStatus:
        status = replace(status, last_attempt=attempt)
        if leaf is not None:
            fp = certfiles.cert_fingerprint(leaf)
            success = AcmeSuccess(action=action, time=attempt.time, leaf_sha256=fp,
                                  not_after=leaf.not_valid_after_utc.isoformat(),
                                  names=tuple(chainmod.hostnames(leaf)))
            issued = (fp, *(f for f in status.issued if f != fp))[:_ISSUED_KEPT]
            status = replace(status, last_success=success, issued=issued)
        if days is not None:
            status = replace(status, renew_days=days)
        return status

    update_status(mr, edit, {"acme": action, "result": attempt.result})


# -- events ------------------------------------------------------------------------

@dataclass(frozen=True)
class TxtRecord:
    """One dns-01 record to create: ``name`` (``_acme-challenge.<domain>``) TXT ``value``."""

    domain: str
    name: str
    value: str


class EventKind(enum.StrEnum):
    """What an :class:`Event` reports."""

    STEP = "step"    #: a stage of the order began
    AUTHZ = "authz"  #: an authorization changed state
    DNS = "dns"      #: TXT records to create


class AuthzStatus(enum.StrEnum):
    """The state of one name's authorization (RFC 8555, 7.1.6)."""

    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"


@dataclass(frozen=True)
class Event:
    """Progress of an order, for the command line and the dashboard.

    ``kind`` is ``"step"`` (a stage began: ``msg`` says which),
    ``"authz"`` (authorization of ``name`` is now ``status``: ``pending``,
    ``valid`` or ``invalid``) or ``"dns"`` (``records`` to create).
    """

    kind: EventKind
    msg: Msg
    name: str | None = None
    status: AuthzStatus | None = None
    records: tuple[TxtRecord, ...] = ()


EventSink = Callable[[Event], None]
DnsConfirm = Callable[[Sequence[TxtRecord]], bool]


def _emit(sink: EventSink | None, event: Event) -> None:
    if sink is not None:
        sink(event)


# -- error translation -----------------------------------------------------------------

def _error_code(err: Any) -> str:
    code = getattr(err, "code", None)
    if code:
        return str(code)
    typ = str(getattr(err, "typ", "") or "")
    return typ.rsplit(":", 1)[-1] if typ else "other"


def _has_key(key: str) -> bool:
    return has(key, "en")


def _problem(err: Any, *, challenge: str | None, name: str | None,
             directory: str) -> tuple[Msg, Msg]:
    """(reason, fix) for an RFC 8555 problem document."""
    code = _error_code(err)
    detail = str(getattr(err, "detail", "") or getattr(err, "title", "") or "").strip() or "-"
    params = {"detail": detail, "name": name or "-", "directory": directory}
    reason_key = f"acme.error.{code}" if _has_key(f"acme.error.{code}") else "acme.error.other"
    if reason_key == "acme.error.other":
        params["code"] = code
    fix_key = next((k for k in (f"acme.fix.{code}.{challenge}", f"acme.error.{code}.fix")
                    if _has_key(k)), "acme.error.other.fix")
    return Msg(reason_key, params), Msg(fix_key, params)


def explain(exc: BaseException, *, challenge: str | None = None, directory: str = "") -> XmailnbError:
    """Turn anything the ACME exchange raised into an :class:`AcmeError`
    whose message says what happened and whose fix says what to do.

    Errors that already are :class:`~xmailnb.errors.XmailnbError` pass through.
    """
    if isinstance(exc, XmailnbError):
        return exc
    if isinstance(exc, acme_errors.ValidationError):
        for authzr in exc.failed_authzrs:
            name = authzr.body.identifier.value
            for chall in authzr.body.challenges:
                if chall.error is not None:
                    reason, fix = _problem(chall.error, challenge=chall.chall.typ, name=name,
                                           directory=directory)
                    return AcmeError(Msg.of("acme.failed.validation", name=name,
                                            challenge=chall.chall.typ, reason=reason), fix)
        return AcmeError(Msg.of("acme.failed.validation", name="-", challenge=challenge or "-",
                                reason=Msg.of("acme.error.unauthorized", detail="-", name="-",
                                              directory=directory)),
                         Msg.of("acme.error.unauthorized.fix", detail="-", name="-", directory=directory))
    if isinstance(exc, acme_errors.IssuanceError):
        reason, fix = _problem(exc.error, challenge=challenge, name=None, directory=directory)
        return AcmeError(Msg.of("acme.failed.issuance", reason=reason), fix)
    if isinstance(exc, messages.Error):
        reason, fix = _problem(exc, challenge=challenge,
                               name=getattr(getattr(exc, "identifier", None), "value", None),
                               directory=directory)
        return AcmeError(Msg.of("acme.failed.ca", reason=reason), fix)
    if isinstance(exc, acme_errors.TimeoutError):
        return AcmeError(Msg.of("acme.failed.timeout", directory=directory),
                         Msg.of("acme.failed.timeout.fix"))
    if isinstance(exc, requests.exceptions.SSLError):
        return AcmeError(Msg.of("acme.net.tls", directory=directory), Msg.of("acme.net.tls.fix"))
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return AcmeError(Msg.of("acme.net.unreachable", directory=directory),
                         Msg.of("acme.net.unreachable.fix", directory=directory))
    if isinstance(exc, (acme_errors.ClientError, jose.errors.DeserializationError, ValueError, KeyError,
                        requests.exceptions.RequestException)):
        return AcmeError(Msg.of("acme.net.bad_response", directory=directory),
                         Msg.of("acme.net.bad_response.fix"))
    if isinstance(exc, OSError):
        return AcmeError(Msg.of("acme.failed.os", reason=exc.strerror or type(exc).__name__),
                         Msg.of("acme.failed.os.fix"))
    return AcmeError(Msg.of("acme.failed.other", error=type(exc).__name__, detail=str(exc)[:300]),
                     Msg.of("acme.failed.other.fix"))


# -- http-01 responder -----------------------------------------------------------------

class _Http01Server(standalone.HTTP01Server):
    # On Windows SO_REUSEADDR lets a second socket steal a busy port: a taken
    # port must fail there too.
    allow_reuse_address = sys.platform != "win32"


class Http01Responder:
    """The http-01 answers for one order, served by :mod:`acme.standalone`
    (as certbot's standalone plugin does: IPv6 and IPv4 on one port), only
    while the order runs.

    >>> with Http01Responder(0, "127.0.0.1") as r:
    ...     r.port > 0
    True
    """

    def __init__(self, port: int, address: str = "") -> None:
        self.port = port
        self.address = address
        # Shared with the request handler: answers added after the start count.
        self.resources: set[standalone.HTTP01RequestHandler.HTTP01Resource] = set()
        self._servers: standalone.BaseDualNetworkedServers | None = None

    def add(self, chall: challenges.HTTP01, response: challenges.HTTP01Response, validation: str) -> None:
        """Answer *chall*'s path with *validation* from now on."""
        self.resources.add(standalone.HTTP01RequestHandler.HTTP01Resource(
            chall=chall, response=response, validation=validation))

    def _make_server(self) -> standalone.BaseDualNetworkedServers:
        return standalone.BaseDualNetworkedServers(_Http01Server, (self.address, self.port), self.resources)

    def start(self) -> "Http01Responder":
        """Bind and serve in a background thread.

        Raises:
            AcmeError: the port is taken or needs administrator rights.
        """
        try:
            self._servers = self._make_server()
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
                raise AcmeError(Msg.of("acme.http.port_taken", port=self.port),
                                Msg.of("acme.http.port_taken.fix", port=self.port), field="http_port") from None
            if exc.errno in (errno.EACCES, errno.EPERM, getattr(errno, "WSAEACCES", -1)):
                raise AcmeError(Msg.of("acme.http.port_denied", port=self.port),
                                Msg.of("acme.http.port_denied.fix", port=self.port), field="http_port") from None
            raise AcmeError(Msg.of("acme.http.bind_failed", port=self.port,
                                   address=self.address or "*", reason=exc.strerror or str(exc)),
                            Msg.of("acme.http.port_taken.fix", port=self.port), field="http_port") from None
        self.port = self._servers.getsocknames()[0][1]
        self._servers.serve_forever()
        return self

    def stop(self) -> None:
        if self._servers is not None:
            self._servers.shutdown_and_server_close()
            self._servers = None

    def __enter__(self) -> "Http01Responder":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- dns-01 helpers -----------------------------------------------------------------------

def _txt_visible(record: TxtRecord, server: str) -> bool:
    if server:
        host, port = parse_dns_server(server)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = 5.0
    try:
        answer = resolver.resolve(record.name, "TXT")
    except (dns.exception.DNSException, OSError):
        return False
    values = {b"".join(rdata.strings).decode("ascii", "replace") for rdata in answer}
    return record.value in values


def _wait_visible(records: Sequence[TxtRecord], server: str, sink: EventSink | None) -> None:
    _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.dns_check", server=server or "-")))
    deadline = time.monotonic() + DNS_CHECK_SECONDS
    pending = list(records)
    while pending:
        pending = [r for r in pending if not _txt_visible(r, server)]
        if not pending:
            return
        if time.monotonic() >= deadline:
            r = pending[0]
            raise AcmeError(Msg.of("acme.dns.not_visible", name=r.name, value=r.value,
                                   seconds=DNS_CHECK_SECONDS),
                            Msg.of("acme.dns.not_visible.fix", name=r.name))
        time.sleep(min(2.0, max(0.1, POLL_SECONDS)))


def _run_hook(command: str, record: TxtRecord) -> None:
    env = dict(os.environ)
    env.update({"XMAILNB_ACME_DOMAIN": record.domain, "XMAILNB_ACME_TXT_NAME": record.name,
                "XMAILNB_ACME_TXT_VALUE": record.value,
                # The names certbot's manual hooks read, so existing scripts work.
                "CERTBOT_DOMAIN": record.domain, "CERTBOT_VALIDATION": record.value})
    try:
        done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True,
                              timeout=HOOK_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AcmeError(Msg.of("acme.dns.hook_timeout", command=command, seconds=HOOK_SECONDS),
                        Msg.of("acme.dns.hook.fix")) from None
    except OSError as exc:
        raise AcmeError(Msg.of("acme.dns.hook_failed", command=command, code="-",
                               output=exc.strerror or str(exc)), Msg.of("acme.dns.hook.fix")) from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        raise AcmeError(Msg.of("acme.dns.hook_failed", command=command, code=done.returncode,
                               output=lines[-1] if lines else "-"), Msg.of("acme.dns.hook.fix"))


# -- the order ----------------------------------------------------------------------------

def _network(account_key: Any, verify: Any) -> Any:
    class Network(client.ClientNetwork):
        """The library retries a badNonce once; busy CAs sometimes need more."""

        def post(self, *args: Any, **kwargs: Any) -> Any:
            # Each post already retries one badNonce (with a fresh nonce).
            for attempt in range(BAD_NONCE_RETRIES):
                try:
                    return super().post(*args, **kwargs)
                except messages.Error as error:
                    if error.code != "badNonce" or attempt == BAD_NONCE_RETRIES - 1:
                        raise
            raise AssertionError("unreachable")

    net = Network(jose.jwk.JWKRSA(key=account_key), alg=jose.jwa.RS256, user_agent=_USER_AGENT,
                  timeout=NETWORK_TIMEOUT)
    net.verify_ssl = verify
    return net


@contextmanager
def _trust_bundle(extra: bytes | None) -> Iterator[Any]:
    """``verify`` for requests: the default store, plus *extra* when given."""
    if not extra:
        yield True
        return
    with open(certifi.where(), "rb") as fh:
        bundle = fh.read()
    fd, name = tempfile.mkstemp(prefix="xmailnb-acme-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(bundle + b"\n" + extra)
        yield name
    finally:
        try:
            os.unlink(name)
        except OSError:
            pass


def _account_key(mr: MailRoot) -> tuple[Any, bytes | None]:
    """The stored account key, or a new one and its PEM to store."""
    try:
        data = mr.read(REL_ACME_ACCOUNT_KEY)
    except OSError as exc:
        raise AcmeError(Msg.of("acme.account.unreadable", path=REL_ACME_ACCOUNT_KEY, reason=exc.strerror or str(exc)),
                        Msg.of("acme.account.unreadable.fix", path=REL_ACME_ACCOUNT_KEY)) from None
    if data is not None:
        try:
            key = certfiles.private_key_from(data, name=REL_ACME_ACCOUNT_KEY)
        except XmailnbError:
            raise AcmeError(Msg.of("acme.account.broken", path=REL_ACME_ACCOUNT_KEY),
                            Msg.of("acme.account.unreadable.fix", path=REL_ACME_ACCOUNT_KEY)) from None
        if isinstance(key, rsa.RSAPrivateKey):
            return key, None
        raise AcmeError(Msg.of("acme.account.broken", path=REL_ACME_ACCOUNT_KEY),
                        Msg.of("acme.account.unreadable.fix", path=REL_ACME_ACCOUNT_KEY))
    key = keys.generate_private_key(keys.KeySpec(kind="rsa", size=2048))
    return key, keys.private_key_pem(key)


def _register(mr: MailRoot, settings: AcmeSettings, client: Any, net: Any, new_key_pem: bytes | None,
              agree_tos: bool, sink: EventSink | None) -> None:
    uri = settings.accounts.get(settings.directory) if new_key_pem is None else None
    if uri:
        net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
    else:
        meta = client.directory.meta
        tos = getattr(meta, "terms_of_service", None) or "-"
        if getattr(meta, "external_account_required", False):
            raise AcmeError(Msg.of("acme.account.eab", directory=settings.directory),
                            Msg.of("acme.account.eab.fix"))
        if not agree_tos:
            raise AcmeError(Msg.of("acme.account.tos", tos=tos, directory=settings.directory),
                            Msg.of("acme.account.tos.fix", tos=tos), field="agree_tos")
        _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.account", directory=settings.directory)))
        reg = messages.NewRegistration.from_data(email=settings.email or None,
                                                 terms_of_service_agreed=True)
        try:
            regr = client.new_account(reg)
            uri = regr.uri
        except acme_errors.ConflictError as exc:
            # This key already has an account with this CA: use it.
            uri = exc.location
            net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
        settings.accounts[settings.directory] = uri
    with Store(mr).transaction(Action.ACME, {"acme": "account", "directory": settings.directory,
                                        "account": uri}) as tx:
        # Accounts registered meanwhile with other CAs are kept.
        recorded = json_doc(tx.read(REL_ACME_SETTINGS)).get("accounts")
        if isinstance(recorded, dict):
            settings.accounts = {**{k: v for k, v in recorded.items() if isinstance(v, str)},
                                 **settings.accounts}
        tx.write(REL_ACME_SETTINGS, dump_json(settings.record()))
        if new_key_pem is not None:
            tx.write(REL_ACME_ACCOUNT_KEY, new_key_pem)
        if settings.directory_ca:
            tx.write(REL_ACME_DIRECTORY_CA, settings.directory_ca)


def _deadline(seconds: float) -> dt.datetime:
    # The acme library compares against naive local time.
    return dt.datetime.now() + dt.timedelta(seconds=seconds)


def _order(mr: MailRoot, settings: AcmeSettings, csr_pem: bytes, *, agree_tos: bool,
           sink: EventSink | None, confirm_dns: DnsConfirm | None) -> str:
    """Run one order for *csr_pem*; return the PEM chain the CA issued."""
    csr = x509.load_pem_x509_csr(csr_pem)
    names = _csr_names(csr)
    if settings.challenge == "http-01":
        wild = [n for n in names if n.startswith("*.")]
        if wild:
            raise AcmeError(Msg.of("acme.http.wildcard", name=wild[0]), Msg.of("acme.http.wildcard.fix"),
                            field="challenge")
    if settings.challenge == "dns-01" and not settings.dns_hook and confirm_dns is None:
        raise AcmeError(Msg.of("acme.dns.no_confirm"), Msg.of("acme.dns.no_confirm.fix"), field="challenge")

    responder: Http01Responder | None = None
    if settings.challenge == "http-01":
        # Bound before the CA is contacted: a busy port fails the order
        # before it counts against the CA's limits.
        responder = Http01Responder(settings.http_port, settings.http_address).start()
        _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.responder", port=responder.port)))
    try:
        with _trust_bundle(settings.directory_ca) as verify:
            try:
                account_key, new_key_pem = _account_key(mr)
                net = _network(account_key, verify)
                _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.directory", directory=settings.directory)))
                directory = client.ClientV2.get_directory(settings.directory, net)
                acme = client.ClientV2(directory, net=net)
                _register(mr, settings, acme, net, new_key_pem, agree_tos, sink)
                _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.order", names=", ".join(names))))
                orderr = acme.new_order(csr_pem)
                todo: list[tuple[Any, Any, Any]] = []
                records: list[TxtRecord] = []
                for authzr in orderr.authorizations:
                    name = authzr.body.identifier.value
                    if authzr.body.status == messages.STATUS_VALID:
                        _emit(sink, Event(EventKind.AUTHZ, Msg.of("acme.authz.valid", name=name), name, AuthzStatus.VALID))
                        continue
                    challb = next((c for c in authzr.body.challenges
                                   if c.chall.typ == settings.challenge), None)
                    if challb is None:
                        offered = ", ".join(c.chall.typ for c in authzr.body.challenges) or "-"
                        raise AcmeError(Msg.of("acme.challenge.unavailable", name=name,
                                               challenge=settings.challenge, offered=offered),
                                        Msg.of("acme.challenge.unavailable.fix"), field="challenge")
                    response, validation = challb.response_and_validation(net.key)
                    if isinstance(challb.chall, challenges.HTTP01):
                        assert responder is not None
                        responder.add(challb.chall, response, validation)
                    else:
                        domain = name[2:] if name.startswith("*.") else name
                        records.append(TxtRecord(domain, challb.chall.validation_domain_name(domain),
                                                 validation))
                    todo.append((authzr, challb, response))
                    _emit(sink, Event(EventKind.AUTHZ, Msg.of("acme.authz.pending", name=name), name, AuthzStatus.PENDING))
                if records:
                    _emit(sink, Event(EventKind.DNS, Msg.of("acme.step.dns_records", count=len(records)),
                                      records=tuple(records)))
                    if settings.dns_hook:
                        _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.dns_hook")))
                        for record in records:
                            _run_hook(settings.dns_hook, record)
                    elif confirm_dns is not None and not confirm_dns(records):
                        raise AcmeError(Msg.of("acme.dns.cancelled"), Msg.of("acme.dns.cancelled.fix"))
                    if settings.dns_check:
                        _wait_visible(records, settings.dns_server, sink)
                _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.validate")))
                for _authzr, challb, response in todo:
                    acme.answer_challenge(challb, response)
                deadline = _deadline(ORDER_SECONDS)
                failed: list[Any] = []
                for authzr, _challb, _response in todo:
                    name = authzr.body.identifier.value
                    while True:
                        authzr, _resp = acme.poll(authzr)
                        status = authzr.body.status
                        if status not in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
                            break
                        if dt.datetime.now() >= deadline:
                            raise acme_errors.TimeoutError()
                        time.sleep(POLL_SECONDS)
                    ok = status == messages.STATUS_VALID
                    _emit(sink, Event(EventKind.AUTHZ, Msg.of("acme.authz.valid" if ok else "acme.authz.invalid",
                                                      name=name), name, AuthzStatus.VALID if ok else AuthzStatus.INVALID))
                    if not ok:
                        failed.append(authzr)
                if failed:
                    raise acme_errors.ValidationError(failed)
                _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.finalize")))
                orderr = acme.finalize_order(orderr, _deadline(ORDER_SECONDS))
                return str(orderr.fullchain_pem)
            except Exception as exc:
                raise explain(exc, challenge=settings.challenge, directory=settings.directory) from None
    finally:
        if responder is not None:
            responder.stop()


def _csr_names(csr: x509.CertificateSigningRequest) -> list[str]:
    """The names an order for *csr* asks for: the CN first, then the DNS
    subjectAltNames (acme's own rule, as certbot reads a CSR)."""
    return crypto_util.get_names_from_subject_and_extensions(csr.subject, csr.extensions)


# -- issue and renew ----------------------------------------------------------------------

@dataclass
class IssueResult:
    """What an order installed."""

    leaf: x509.Certificate
    names: list[str]
    not_after: dt.datetime
    entry: ArchiveEntry | None  # the store's entry of the install (None: same files)
    plan: actions.InstallPlan
    action: str  # "issue" or "renew"

    def to_json(self, lang: str) -> dict[str, Any]:
        return {"action": self.action, "names": self.names, "not_after": self.not_after.isoformat(),
                "leaf_sha256": certfiles.cert_fingerprint(self.leaf),
                "archive": self.entry.id if self.entry is not None else None,
                "plan": self.plan.describe(lang)}


def _pending_pair(mr: MailRoot) -> tuple[bytes, Any]:
    try:
        csr_pem = mr.read(mr.rel_pending_csr)
    except OSError:
        csr_pem = None
    if csr_pem is None:
        raise AcmeError(Msg.of("acme.issue.no_csr", path=mr.rel_pending_csr),
                        Msg.of("acme.issue.no_csr.fix"))
    csr = certfiles.csr_from(csr_pem, name=mr.rel_pending_csr)
    try:
        key_pem = mr.read(mr.rel_pending_key)
        key = certfiles.private_key_from(key_pem, name=mr.rel_pending_key) if key_pem is not None else None
    except (OSError, XmailnbError):
        key = None
    if key is None or not keys.public_key_matches(key, csr):
        raise AcmeError(Msg.of("acme.issue.no_key", path=mr.rel_pending_key, csr=mr.rel_pending_csr),
                        Msg.of("acme.issue.no_csr.fix"))
    return csr.public_bytes(serialization.Encoding.PEM), csr


def _check_hostname(mr: MailRoot, csr: x509.CertificateSigningRequest) -> None:
    """Refuse before ordering what the install would refuse afterwards: a
    certificate without the mail host name server.tab names (orders count
    against the CA's limits).  The names are judged by the install's rule."""
    hostname = mail_hostname_of(mr)
    if not hostname:
        return
    # The names the order asks for (the CN too: the CA copies it into the
    # subjectAltName), judged as the install will judge the certificate.
    names = _csr_names(csr)
    try:
        san = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
    except ValueError:
        san = None
    if chainmod.san_covers_hostname(san, hostname):
        return
    raise AcmeError(Msg.of("acme.issue.hostname", hostname=hostname, names=", ".join(names) or "-"),
                    Msg.of("acme.issue.hostname.fix", hostname=hostname))


def _plan(mr: MailRoot, fullchain: str, key_pem: bytes | None) -> Any:
    key = actions.Upload(key_pem, "acme-key") if key_pem is not None else None
    return actions.plan_install(mr, actions.Upload(fullchain.encode("ascii"), "acme"), key=key)


def issue(mr: MailRoot, settings: AcmeSettings, *, agree_tos: bool = False,
          on_event: EventSink | None = None, confirm_dns: DnsConfirm | None = None) -> IssueResult:
    """Get a certificate for the pending CSR (``sslconf/server.csr``) and install it.

    Args:
        settings: where and how; recorded under ``sslconf/acme/`` for
            :func:`renew`.
        agree_tos: the user agreed to the CA's terms of service (needed to
            register a new account).
        on_event: receives :class:`Event` progress.
        confirm_dns: dns-01 without a hook: called with the records once
            they are shown; returns ``True`` when they are in place.

    Returns:
        The :class:`IssueResult` of the install.

    Raises:
        AcmeError: the order failed (nothing installed); the message says
            what happened and the fix what to do.
        UsageError, InputError, BusyError: invalid settings, a busy MailRoot.
    """
    settings.validate()
    previous = load_settings(mr)
    if previous is not None:
        settings.accounts = {**previous.accounts, **settings.accounts}
    csr_pem, csr = _pending_pair(mr)
    _check_hostname(mr, csr)
    return _complete(mr, settings, csr_pem, None, None, "issue", agree_tos=agree_tos,
                     sink=on_event, confirm_dns=confirm_dns)


def _complete(mr: MailRoot, settings: AcmeSettings, csr_pem: bytes, request: Any, key: Any,
              action: str, *, agree_tos: bool, sink: EventSink | None,
              confirm_dns: DnsConfirm | None, days: int | None = None) -> IssueResult:
    try:
        fullchain = _order(mr, settings, csr_pem, agree_tos=agree_tos, sink=sink, confirm_dns=confirm_dns)
        _emit(sink, Event(EventKind.STEP, Msg.of("acme.step.install")))
        plan = _plan(mr, fullchain, keys.private_key_pem(key) if key is not None else None)
    except XmailnbError as exc:
        if load_settings(mr) is not None:
            _record_attempt(mr, action, error=exc, days=days)
        raise
    if request is not None:
        # The fresh pair becomes the pending one, the previous pair archived.
        actions.create_csr(mr, request, key=key)
    # Recorded before the install so that the install stays the newest
    # archived state: a plain 'xmailnb rollback' then undoes it.
    _record_attempt(mr, action, leaf=plan.leaf, days=days)
    entry = actions.apply_install(mr, plan)
    return IssueResult(leaf=plan.leaf, names=chainmod.hostnames(plan.leaf), not_after=plan.leaf.not_valid_after_utc,
                       entry=entry, plan=plan, action=action)


@dataclass
class RenewOutcome:
    """What :func:`renew` did: ``renewed`` with its ``result``, or why not
    (``reason``: ``"not_due"`` or ``"not_acme"``)."""

    renewed: bool
    reason: str | None
    not_after: dt.datetime | None
    renew_after: dt.datetime | None
    result: IssueResult | None = None

    @property
    def message(self) -> Msg:
        if self.renewed and self.result is not None:
            entry = self.result.entry
            return Msg.of("acme.renew.done", names=", ".join(self.result.names),
                          not_after=self.result.not_after.date().isoformat(),
                          id=entry.id if entry is not None else "-")
        if self.reason == "not_acme":
            return Msg.of("acme.renew.not_acme")
        return Msg.of("acme.renew.not_due",
                      not_after=self.not_after.date().isoformat() if self.not_after else "-",
                      date=self.renew_after.date().isoformat() if self.renew_after else "-")


def _renewal_request(mr: MailRoot, leaf: x509.Certificate | None) -> Any:
    """A CSR request with the subject and names of the current one."""
    values = {name: "" for name in ("country", "state", "locality", "org", "unit", "cn", "email", "aliases",
                                    "keytype", "keysize", "curve", "memo")}
    values.update(actions.pending_form_values(mr))
    if not values["cn"]:
        raise AcmeError(Msg.of("acme.renew.no_csr", path=mr.rel_pending_csr), Msg.of("acme.renew.no_csr.fix"))
    if leaf is not None and chainmod.hostnames(leaf):
        # Renew what is installed: its names, its CN when it is one of them.
        sans = chainmod.hostnames(leaf)
        cns = [str(a.value) for a in leaf.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)]
        if cns and cns[0] in sans:
            values["cn"] = cns[0]
        elif values["cn"] not in sans:
            values["cn"] = sans[0]
        values["aliases"] = " ".join(n for n in sans if n != values["cn"])
    values["keytype"] = values["keytype"] or "rsa"
    try:
        return csrmod.request_from_values(values)
    except XmailnbError as exc:
        raise AcmeError(exc.msg, Msg.of("acme.renew.no_csr.fix")) from None


def renew(mr: MailRoot, days: int = DEFAULT_RENEW_DAYS, *, on_event: EventSink | None = None,
          at: dt.datetime | None = None) -> RenewOutcome:
    """Renew the ACME certificate when fewer than *days* days remain.

    Non-interactive: reuses the account and the settings ``issue``
    recorded; dns-01 needs the recorded hook.  A fresh key and CSR of the
    same subject and names are used; they replace the pending pair (archived)
    only when the new certificate is installed.

    Raises:
        AcmeError: ACME was never used here, or the renewal failed (the
            installed certificate untouched; the failure is recorded for
            the diagnosis).
    """
    if not isinstance(days, int) or days < 1:
        raise UsageError(Msg.of("acme.settings.days", value=days), Msg.of("acme.settings.days.fix"),
                         field="days")
    settings = load_settings(mr)
    if settings is None:
        raise AcmeError(Msg.of("acme.renew.never"), Msg.of("acme.renew.never.fix"))
    status = load_status(mr)
    due, leaf, renew_after = renewal_due(mr, days, at=at)
    if leaf is not None and certfiles.cert_fingerprint(leaf) not in status.issued:
        return RenewOutcome(False, "not_acme", leaf.not_valid_after_utc, renew_after)
    if not due:
        assert leaf is not None
        if status.renew_days != days:
            # Written once per change of --days, so the diagnosis shows the
            # renewal date the scheduled runs will act on.
            update_status(mr, lambda st: replace(st, renew_days=days),
                           {"acme": "renew_days", "renew_days": days})
        return RenewOutcome(False, "not_due", leaf.not_valid_after_utc, renew_after)
    try:
        request = _renewal_request(mr, leaf)
        settings.validate()
    except XmailnbError as exc:
        _record_attempt(mr, "renew", error=exc, days=days)
        raise
    key = keys.generate_private_key(request.key)
    csr_pem = csrmod.csr_pem(csrmod.build_csr(request, key))
    result = _complete(mr, settings, csr_pem, request, key, "renew", agree_tos=False, sink=on_event,
                       confirm_dns=None, days=days)
    return RenewOutcome(True, None, result.not_after,
                        result.not_after - dt.timedelta(days=days), result)



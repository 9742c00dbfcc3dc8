"""What is installed in a MailRoot, and what vouches for it.

The installed chain (server.cert), and the trust anchors a verdict on a
MailRoot uses: the public roots, the CA the administrator gave, certs.pem
and the practice CA's root.  The diagnosis, the live probe, the install,
the notice and the step progress all read them here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from ..errors import XmailnbError
from ..files import read_regular
from ..mailroot.layout import REL_PRACTICE_ROOT_CERT, MailRoot
from ..pki import certfiles
from ..pki import chain as chainmod

__all__ = ["installed_chain", "installed_leaf", "leaf_sha256", "pending_public_key", "practice_root", "anchor_sets",
           "practice_issued", "PRACTICE_ORG"]

log = logging.getLogger(__name__)

#: The organisation the practice CA (issue #4) names in every certificate it
#: issues; a certificate from it is never for production.
PRACTICE_ORG = "xmailnb Practice CA"
# Any issuer organisation naming "xmailnb Practice" counts (older practice CAs too).
_PRACTICE_MARK = "xmailnb practice"


def installed_chain(mr: MailRoot) -> list[x509.Certificate]:
    """The certificates of server.cert, leaf first (``[]`` when missing or unreadable)."""
    try:
        data = mr.read(mr.rel_server_cert, certfiles.MAX_INPUT_BYTES)
        return certfiles.certificates_from(data, name=mr.rel_server_cert) if data is not None else []
    except (OSError, XmailnbError, ValueError) as exc:
        log.debug("no usable server.cert in %s: %s", mr.path, exc)
        return []


def installed_leaf(mr: MailRoot) -> x509.Certificate | None:
    """The installed server certificate, or ``None``."""
    certs = installed_chain(mr)
    return certs[0] if certs else None


def pending_public_key(mr: MailRoot) -> PublicKeyTypes | None:
    """The public half of the key waiting in sslconf (``None``: missing,
    unreadable, encrypted or no key).

    Only the public half is compared here (with its CSR, with certificates),
    so the key is loaded without RSA's private-key consistency check: that
    check takes about 0.1 s per load, and the diagnosis and the stepper read
    the key on every refresh.  The install loads it in full before use.
    """
    try:
        data = read_regular(mr.pending_key, certfiles.MAX_INPUT_BYTES)
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        log.debug("no usable pending key in %s: %s", mr.path, exc)
        return None
    return key.public_key()


def leaf_sha256(mr: MailRoot) -> str | None:
    """The fingerprint of the installed server certificate, or ``None``."""
    leaf = installed_leaf(mr)
    return certfiles.cert_fingerprint(leaf) if leaf is not None else None


def practice_root(mr: MailRoot) -> x509.Certificate | None:
    """The practice CA's root, when this MailRoot has one (sandbox/training)."""
    try:
        data = mr.read(REL_PRACTICE_ROOT_CERT, certfiles.MAX_INPUT_BYTES)
        certs = certfiles.load_material(data, name=REL_PRACTICE_ROOT_CERT).certificates if data else []
    except (OSError, XmailnbError):
        return None
    return certs[0] if certs else None


def anchor_sets(mr: MailRoot, certs_pem: Sequence[x509.Certificate] = (),
                given: Sequence[x509.Certificate] = (), *,
                given_as: chainmod.Anchor = chainmod.Anchor.GIVEN) -> dict[str, Sequence[x509.Certificate]]:
    """The trust anchors a verdict on *mr* uses, by name, in the order tried:
    the public roots, the CA the administrator gave (named *given_as*:
    ``ca`` for an install, ``cafile`` for the live check), certs.pem and the
    practice root (``practice``)."""
    root = practice_root(mr)
    return {chainmod.Anchor.PUBLIC: chainmod.public_roots(), given_as: list(given),
            chainmod.Anchor.CERTS_PEM: list(certs_pem), chainmod.Anchor.PRACTICE: [root] if root is not None else []}


def practice_issued(certs: Sequence[x509.Certificate]) -> bool:
    """Whether *certs* (a served or installed chain) come from a practice CA."""
    for cert in certs[1:] or certs:
        for attr in cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
            if _PRACTICE_MARK in str(attr.value).lower():
                return True
    return False

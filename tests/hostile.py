"""Small hostile files, built at test time (issue 17 §1).

Each is a few hundred kilobytes at most and, read naively, costs minutes:
many certificates with one name, a ring of cross-signed CAs, a PKCS#12 file
asking for 2^31-1 key-derivation rounds, thousands of names against
thousands of name constraints.  Nothing here is committed key material.
"""

from __future__ import annotations

import datetime as dt

from asn1crypto import cms, pkcs12 as asn1pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from pki import now

HUGE_ROUNDS = 2**31 - 1


def _ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: str, key, signer, *, ca: bool, sans=(), nc=None) -> x509.Certificate:
    start = now() - dt.timedelta(days=1)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(start + dt.timedelta(days=90))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    if nc is not None:
        b = b.add_extension(nc, critical=True)
    return b.sign(signer, hashes.SHA256())


def pem(certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def same_name(count: int) -> list[x509.Certificate]:
    """*count* non-CA certificates all named "X" and issued by "X", each
    signed by a key of its own (so none verifies another)."""
    return [_cert("X", "X", k, k, ca=False) for k in (_ec_key() for _ in range(count))]


def ring(count: int, *, leaf: bool = True) -> list[x509.Certificate]:
    """A leaf under *count* CAs named alike, each cross-signed by the next
    (the last by the first): every CA is an issuer candidate of every other."""
    keys_ = [_ec_key() for _ in range(count)]
    cas = [_cert("Ring CA", "Ring CA", keys_[i], keys_[(i + 1) % count], ca=True) for i in range(count)]
    out = []
    if leaf:
        k = _ec_key()
        out.append(_cert("mail.example.jp", "Ring CA", k, keys_[0], ca=False, sans=["mail.example.jp"]))
    return out + cas


def name_constraint_bomb(names: int, subtrees: int) -> tuple[list[x509.Certificate], x509.Certificate]:
    """(server.cert as [leaf, CA], root): the CA permits *subtrees* DNS
    subtrees, the leaf carries *names* DNS names, all in the last subtree
    (so a naive check compares every name with every subtree)."""
    root_key, ca_key, leaf_key = _ec_key(), _ec_key(), _ec_key()
    root = _cert("NC Root", "NC Root", root_key, root_key, ca=True)
    nc = x509.NameConstraints(permitted_subtrees=[x509.DNSName(f"p{i}.example.net") for i in range(subtrees)],
                              excluded_subtrees=None)
    ca = _cert("NC CA", "NC Root", ca_key, root_key, ca=True, nc=nc)
    last = f"p{subtrees - 1}.example.net"
    sans = [f"n{i}.{last}" for i in range(names)]
    leaf = _cert(sans[0], "NC CA", leaf_key, ca_key, ca=False, sans=sans)
    return [leaf, ca], root


def p12_bomb(cert: x509.Certificate, key, *, where: str, rounds: int = HUGE_ROUNDS) -> bytes:
    """A PKCS#12 file for *cert* and *key* whose MAC (``where="mac"``) or
    whose PBKDF2 key encryption (``where="pbkdf2"``) asks for *rounds*
    iterations.  Written with few rounds, then the count is rewritten in
    the structure: the file is never opened with the huge count here."""
    enc = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(1)
           .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
           .build(b"secret"))
    data = pkcs12.serialize_key_and_certificates(b"mail", key, cert, None, enc)
    pfx = asn1pkcs12.Pfx.load(data)
    if where == "mac":
        pfx["mac_data"]["iterations"] = rounds
        return pfx.dump(force=True)
    assert where == "pbkdf2"
    safe = pfx.authenticated_safe
    new_infos = []
    for info in safe:
        if info["content_type"].native == "data":
            bags = asn1pkcs12.SafeContents.load(info["content"].native)
            for bag in bags:
                if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                    alg = bag["bag_value"]["encryption_algorithm"]
                    alg["parameters"]["key_derivation_func"]["parameters"]["iteration_count"] = rounds
            info = cms.ContentInfo({"content_type": "data", "content": bags.dump(force=True)})
        new_infos.append(info)
    auth = asn1pkcs12.AuthenticatedSafe(new_infos)
    pfx["auth_safe"] = cms.ContentInfo({"content_type": "data", "content": auth.dump(force=True)})
    return pfx.dump(force=True)


def p12_nested_bomb(cert: x509.Certificate, key, password: bytes = b"secret") -> bytes:
    """A PKCS#12 file whose key bag, asking for 2^31-1 PBKDF2 rounds, sits
    inside an encrypted part (PBES2, one round): only someone who knows
    *password* can see the count.  The MAC is left stale: the count must be
    refused before OpenSSL gets to the MAC."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    enc = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(1)
           .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
           .build(password))
    pfx = asn1pkcs12.Pfx.load(pkcs12.serialize_key_and_certificates(b"mail", key, cert, None, enc))
    infos = list(pfx.authenticated_safe)
    encrypted = next(i for i in infos if i["content_type"].native == "encrypted_data")
    plain = next(i for i in infos if i["content_type"].native == "data")
    bags = asn1pkcs12.SafeContents.load(plain["content"].native)
    for bag in bags:
        if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
            alg = bag["bag_value"]["encryption_algorithm"]
            alg["parameters"]["key_derivation_func"]["parameters"]["iteration_count"] = HUGE_ROUNDS
    algorithm = encrypted["content"]["encrypted_content_info"]["content_encryption_algorithm"]
    secret = PBKDF2HMAC(hashes.SHA256(), algorithm.key_length, algorithm.kdf_salt, 1).derive(password)
    padder = padding.PKCS7(128).padder()
    data = padder.update(bags.dump(force=True)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(algorithm.encryption_iv)).encryptor()
    hidden = cms.ContentInfo({"content_type": "encrypted_data", "content": cms.EncryptedData({
        "version": "v0",
        "encrypted_content_info": {"content_type": "data", "content_encryption_algorithm": algorithm,
                                   "encrypted_content": encryptor.update(data) + encryptor.finalize()}})})
    auth = asn1pkcs12.AuthenticatedSafe([encrypted, hidden])
    pfx["auth_safe"] = cms.ContentInfo({"content_type": "data", "content": auth.dump(force=True)})
    return pfx.dump(force=True)


__all__ = ["HUGE_ROUNDS", "pem", "same_name", "ring", "name_constraint_bomb", "p12_bomb", "p12_nested_bomb"]

"""Keys and certificates: development credentials, and loading a signer's key + chain.

The signer certificate follows the C2PA 2.2 profile (see shared C2PA-NOTES): end-entity,
v3, critical keyUsage digitalSignature, an EKU list with c2pa-kp-claimSigning plus
emailProtection and documentSigning (so older validators accept it), an Authority Key
Identifier, and at most 366 days of validity.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from clipproof.atomic import atomic_output, output_folder
from clipproof.errors import CredentialError, InputMissingError, OutputExistsError, UsageError

C2PA_CLAIM_SIGNING = ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
DEV_LABEL = "clipproof development credentials - NOT FOR PRODUCTION"

ROOT_CERT = "root.pem"
SIGNER_CHAIN = "signer.pem"
SIGNER_KEY = "signer.key"


@dataclass(frozen=True)
class DevKeyPaths:
    root: Path      # the root certificate: give it as a trust anchor
    chain: Path     # signer certificate chain, leaf first
    key: Path       # signer private key (0600)


@dataclass(frozen=True)
class SigningIdentity:
    """A private key and its certificate chain, checked to belong together."""

    alg: str              # c2pa algorithm name: es256, es384, es512, ps256, ed25519
    key_pem: bytes
    chain_pem: bytes
    common_name: str
    organization: str | None


# ---------------------------------------------------------------------------------------------
# Development credentials
# ---------------------------------------------------------------------------------------------

def init_dev_keys(folder: str | os.PathLike, *, common_name: str = "clipproof dev signer") -> DevKeyPaths:
    """Create a development root CA and an ES256 signer certificate in ``folder``.

    Refuses to overwrite: an existing key is someone's identity. The root's private key is
    not kept (nothing more can be issued under it, which is what a throwaway CA should allow).
    """
    if not 1 <= len(common_name) <= 64:     # X.509's upper bound for a common name (RFC 5280)
        raise UsageError(f"the signer's name must be 1 to 64 characters, got {len(common_name)}")
    folder = Path(folder)
    paths = DevKeyPaths(folder / ROOT_CERT, folder / SIGNER_CHAIN, folder / SIGNER_KEY)
    existing = [p.name for p in (paths.root, paths.chain, paths.key) if p.exists()]
    if existing:
        raise OutputExistsError(f"already holds {', '.join(existing)}; refusing to overwrite keys", path=folder)
    output_folder(folder)

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "clipproof development root CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_LABEL),
    ])
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )

    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_LABEL),
        ]))
        .issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([
            C2PA_CLAIM_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING,
        ]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    _write(paths.key, signer_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), mode=0o600)
    _write(paths.chain, signer.public_bytes(pem) + root.public_bytes(pem))
    _write(paths.root, root.public_bytes(pem))
    return paths


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_output(path, mode=mode, overwrite=False) as tmp:
        tmp.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# Loading a signer
# ---------------------------------------------------------------------------------------------

def read_pem_file(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of a key or certificate file, or one InputMissingError line saying why not."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as e:
        raise InputMissingError(f"{what} not found", path=path) from e
    except IsADirectoryError as e:
        raise InputMissingError(f"{what} is a folder, not a file", path=path) from e
    except OSError as e:
        raise InputMissingError(f"cannot read {what} ({e.strerror})", path=path) from e


def load_certificates(path: str | os.PathLike, what: str = "certificate") -> list[x509.Certificate]:
    """All PEM certificates in a file; CredentialError if there are none."""
    return parse_certificates(read_pem_file(path, what), path, what)


def parse_certificates(data: bytes, path: str | os.PathLike, what: str = "certificate") -> list[x509.Certificate]:
    """All PEM certificates in ``data`` (read from ``path``), or the one DER certificate it is — a
    .cer or .der file, as CAs publish their roots (a DER anchor was refused as "not a PEM trust
    anchor"); CredentialError if there are none."""
    if b"-----BEGIN" not in data:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            pass
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise CredentialError(f"not a PEM {what} (nor one DER certificate) ({e})", path=path) from e


def load_identity(key_path: str | os.PathLike, chain_path: str | os.PathLike) -> SigningIdentity:
    """Load and check a signer: key parses, chain parses, key matches the leaf, leaf is current
    and fit for C2PA claim signing. Each failure is a one-line CredentialError."""
    key_pem = read_pem_file(key_path, "private key")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError as e:
        raise CredentialError("private key is encrypted; give an unencrypted PEM key", path=key_path) from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise CredentialError("not a PEM private key", path=key_path) from e
    chain = load_certificates(chain_path, "certificate chain")
    leaf = chain[0]

    def spki(k) -> bytes:
        return k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    if spki(key.public_key()) != spki(leaf.public_key()):
        raise CredentialError(f"private key does not match the certificate in {chain_path}", path=key_path)
    now = dt.datetime.now(dt.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise CredentialError(
            f"{chain_path}: certificate is not valid now (valid {leaf.not_valid_before_utc:%Y-%m-%d} "
            f"to {leaf.not_valid_after_utc:%Y-%m-%d})")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise CredentialError("certificate has no extended key usage; C2PA signers need one", path=chain_path) from None
    if ObjectIdentifier("2.5.29.37.0") in eku:
        raise CredentialError("certificate uses anyExtendedKeyUsage, which C2PA forbids", path=chain_path)
    return SigningIdentity(
        alg=_algorithm(key, key_path), key_pem=key_pem,
        chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain),
        common_name=subject_attribute(leaf.subject, NameOID.COMMON_NAME) or "",
        organization=subject_attribute(leaf.subject, NameOID.ORGANIZATION_NAME),
    )


def _algorithm(key, key_path) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
        raise CredentialError(f"EC curve {key.curve.name} is not allowed by C2PA", path=key_path)
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise CredentialError(f"key type {type(key).__name__} is not allowed by C2PA", path=key_path)


def subject_attribute(name: x509.Name, oid) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None

"""Development credentials and loading signers: the C2PA certificate profile, bad keys."""
from __future__ import annotations

import datetime as dt
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from clipproof.errors import CredentialError, InputMissingError, OutputExistsError, UsageError
from clipproof.provenance.keys import C2PA_CLAIM_SIGNING, init_dev_keys, load_certificates, load_identity
from conftest import CERTS


def test_dev_keys_follow_the_c2pa_profile(keys):
    assert stat.S_IMODE(keys.key.stat().st_mode) == 0o600
    leaf, root = load_certificates(keys.chain)
    assert load_certificates(keys.root)[0] == root
    assert leaf.issuer == root.subject and leaf.version == x509.Version.v3
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) and leaf.public_key().curve.name == "secp256r1"
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert C2PA_CLAIM_SIGNING in eku and x509.ObjectIdentifier("2.5.29.37.0") not in eku
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=366)
    assert "NOT FOR PRODUCTION" in leaf.subject.rfc4514_string()
    # The root's key is not kept: only the three documented files exist.
    assert sorted(p.name for p in keys.root.parent.iterdir()) == ["root.pem", "signer.key", "signer.pem"]


def test_init_refuses_to_overwrite(keys):
    before = keys.key.read_bytes()
    with pytest.raises(OutputExistsError, match="refusing"):
        init_dev_keys(keys.root.parent)
    assert keys.key.read_bytes() == before


@pytest.mark.parametrize("name", ["", "x" * 65])
def test_a_signer_name_x509_cannot_hold_is_a_usage_error(name, tmp_path):
    """An internal error from cryptography before, after the folder had been made."""
    with pytest.raises(UsageError, match="1 to 64 characters"):
        init_dev_keys(tmp_path / "keys", common_name=name)
    assert not (tmp_path / "keys").exists()


def test_load_identity(keys):
    ident = load_identity(keys.key, keys.chain)
    assert ident.alg == "es256" and ident.common_name == "clipproof dev signer"


@pytest.mark.parametrize("alg", ["es256", "ps256", "ed25519"])
def test_reference_signers_load(alg):
    assert load_identity(CERTS / f"{alg}.pem", CERTS / f"{alg}.pub").alg == alg


def test_mismatched_key_and_cert(keys, other_keys):
    with pytest.raises(CredentialError, match="does not match"):
        load_identity(other_keys.key, keys.chain)


def test_bad_key_files(keys, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(CredentialError, match="not a PEM private key"):
        load_identity(junk, keys.chain)
    with pytest.raises(CredentialError, match="not a PEM certificate"):
        load_identity(keys.key, junk)
    with pytest.raises(InputMissingError, match="not found"):
        load_identity(tmp_path / "missing.key", keys.chain)
    with pytest.raises(CredentialError):
        # A key given where the chain belongs.
        load_identity(keys.key, keys.key)


def test_a_der_certificate_is_read_as_one(keys, ai_clip, tmp_path):
    """CAs publish roots as .cer/.der files: a DER trust anchor was "not a PEM trust anchor"."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from clipproof import verify
    root_der = tmp_path / "root.der"
    root_der.write_bytes(load_certificates(keys.root)[0].public_bytes(Encoding.DER))
    assert load_certificates(root_der) == load_certificates(keys.root)
    assert verify(ai_clip, trust=str(root_der), detector=None).credentials.state == "trusted"
    (tmp_path / "junk.der").write_bytes(b"\x30\x82junk")
    with pytest.raises(CredentialError, match="not a PEM certificate \\(nor one DER certificate\\)"):
        load_certificates(tmp_path / "junk.der")


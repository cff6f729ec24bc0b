"""Every file in tests/fixtures/c2pa (copied from the reference implementation) verifies as its README's table says."""
from __future__ import annotations

import pytest

from clipproof import Verifier
from clipproof.errors import InvalidMediaError
from conftest import CERTS, FIXTURES

BUNDLE = CERTS / "test_cert_root_bundle.pem"

# file: (state without anchors, state with the test bundle, codes that must appear, verdict)
EXPECTED = {
    "video1.mp4": ("valid", "valid", {"signingCredential.untrusted"}, "uncertain"),
    "legacy.mp4": ("valid", "valid", {"signingCredential.untrusted"}, "uncertain"),
    "video1_no_manifest.mp4": ("absent", "absent", {"manifest.notFound"}, "uncertain"),
    "c.mov": ("absent", "absent", {"manifest.notFound"}, "uncertain"),
    "test.avi": ("absent", "absent", {"manifest.notFound"}, "uncertain"),
    "dashinit.mp4": ("invalid", "invalid", {"assertion.bmffHash.mismatch"}, "tampered"),
    "C.jpg": ("valid", "trusted", set(), "ai-generated-declared"),
    "CA.jpg": ("valid", "trusted", set(), "uncertain"),
    "CIE-sig-CA.jpg": ("valid", "trusted", set(), "ai-generated-declared"),
    "E-sig-CA.jpg": ("invalid", "invalid", {"claimSignature.mismatch"}, "tampered"),
    "XCA.jpg": ("invalid", "invalid", {"assertion.dataHash.mismatch"}, "tampered"),
    "cloud.jpg": ("error", "error", {"manifest.remoteNotFetched"}, "uncertain"),
}
UNREADABLE = {"dash1.m4s": "type is unsupported", "nested_moov_1000.mp4": "too deeply nested"}


def test_table_covers_every_fixture():
    files = {p.name for p in FIXTURES.iterdir() if p.is_file() and p.name != "README.md"}
    assert files - {"LICENSE-MIT"} == set(EXPECTED) | set(UNREADABLE)


@pytest.fixture(scope="module")
def plain():
    # Only its credentials are read: the anchored verifier searches the unsigned files for a mark.
    return Verifier(detector=None, watermark=False)


@pytest.fixture(scope="module")
def anchored():
    return Verifier(trust=BUNDLE, detector=None)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name, plain, anchored):
    state, anchored_state, codes, verdict = EXPECTED[name]
    bare = plain.verify(FIXTURES / name)
    assert bare.credentials.state == state
    report = anchored.verify(FIXTURES / name)
    assert report.credentials.state == anchored_state
    assert codes <= {f.code for f in report.credentials.failures}
    assert report.verdict == verdict
    if anchored_state == "trusted":
        assert report.credentials.failures == []
    assert all(f.explanation for f in report.credentials.failures)


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_fixture(name, anchored):
    with pytest.raises(InvalidMediaError, match=UNREADABLE[name]):
        anchored.verify(FIXTURES / name)


def test_cloud_manifest_explains_offline(anchored):
    report = anchored.verify(FIXTURES / "cloud.jpg")
    assert any("remotely" in r and "https://" in r for r in report.reasons)


def test_ingredient_with_bad_signature_is_reported(anchored):
    report = anchored.verify(FIXTURES / "CIE-sig-CA.jpg")
    bad = [f.code for i in report.credentials.ingredients for f in i.failures]
    assert "claimSignature.mismatch" in bad
    assert any("Ingredient" in r for r in report.reasons)


def test_signer_and_time_of_reference_file(anchored):
    c = anchored.verify(FIXTURES / "C.jpg").credentials
    assert c.signer.common_name == "C2PA Signer" and c.signer.issuer
    assert c.signed_at.startswith("2024-08-06")

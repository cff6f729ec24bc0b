"""Plain-English explanations of C2PA validation codes, in the wording verification desks
expect (C2PA UX guidance: neutral, "Content Credential invalid" with the reason, "issued by an
unknown source" for untrusted signers). The library's own explanation is kept as detail."""
from __future__ import annotations

import re

_EXPLANATIONS = {
    # Ours: conditions the library reports as exceptions.
    "manifest.notFound": "No Content Credentials: the file carries no C2PA manifest.",
    "manifest.remoteNotFetched": "The Content Credentials are stored remotely and were not fetched: "
                                 "clipproof verifies offline",
    "asset.unsupportedFormat": "The C2PA reader does not support this file type",
    "asset.unparseable": "The C2PA reader could not parse the file's structure",
    "general.error": "The C2PA reader failed",
    # Trust and signature.
    "signingCredential.untrusted": "Signed by an unknown source: the signer's certificate does not "
                                   "chain to a trusted anchor.",
    "signingCredential.invalid": "Content Credential invalid: the signer's certificate is malformed "
                                 "or not allowed for signing.",
    "signingCredential.revoked": "Content Credential invalid: the signer's certificate was revoked.",
    "signingCredential.expired": "Content Credential invalid: the signer's certificate had expired when it signed.",
    "claimSignature.mismatch": "Content Credential invalid: invalid signature (the claim was altered "
                               "after signing).",
    "claimSignature.missing": "Content Credential invalid: the claim signature is missing.",
    "claimSignature.outsideValidity": "Content Credential invalid: signed outside the certificate's validity period.",
    "timeStamp.mismatch": "Content Credential invalid: the time-stamp does not match the signature.",
    "timeStamp.untrusted": "The signing time-stamp comes from an untrusted authority.",
    "timeStamp.outsideValidity": "The signing time-stamp lies outside its certificate's validity.",
    # Bindings to the content.
    "assertion.dataHash.mismatch": "Content Credential invalid: hard binding hash mismatch (the file's "
                                   "content changed after signing).",
    "assertion.bmffHash.mismatch": "Content Credential invalid: hard binding hash mismatch (the video's "
                                   "data changed after signing).",
    "assertion.boxesHash.mismatch": "Content Credential invalid: hard binding hash mismatch (the file's "
                                    "boxes changed after signing).",
    "assertion.collectionHash.mismatch": "Content Credential invalid: hard binding hash mismatch.",
    "assertion.hashedURI.mismatch": "Content Credential invalid: an assertion was changed after signing.",
    "assertion.missing": "Content Credential invalid: an assertion the claim lists is missing.",
    "assertion.multipleHardBindings": "Content Credential invalid: more than one hard binding.",
    "assertion.undeclared": "Content Credential invalid: an assertion is not declared in the claim.",
    "assertion.inaccessible": "Content Credential invalid: an assertion cannot be read.",
    "assertion.cbor.invalid": "Content Credential invalid: an assertion is malformed.",
    "assertion.json.invalid": "Content Credential invalid: an assertion is malformed.",
    "assertion.action.ingredientMismatch": "Content Credential invalid: an action names an ingredient that does not match.",
    "claim.missing": "Content Credential invalid: the claim is missing.",
    "claim.multiple": "Content Credential invalid: more than one claim.",
    "claim.hardBindings.missing": "Content Credential invalid: nothing binds the credential to the content.",
    "claim.malformed": "Content Credential invalid: the claim is malformed.",
    "manifest.inaccessible": "Content Credential invalid: the manifest cannot be read.",
    "manifest.multipleParents": "Content Credential invalid: more than one parent ingredient.",
    "ingredient.manifest.mismatch": "An ingredient's Content Credential does not match its recorded hash.",
    "ingredient.claimSignature.mismatch": "An ingredient's Content Credential has an invalid signature.",
    "ingredient.hashedURI.mismatch": "An ingredient's Content Credential was changed.",
    "algorithm.unsupported": "Content Credential invalid: signed with an unsupported algorithm.",
}


def explain(code: str, detail: str | None = None) -> str:
    """A sentence for ``code``; the library's ``detail`` follows when it adds something."""
    base = _EXPLANATIONS.get(code)
    if base is None:
        return f"{code}: {detail}" if detail else code
    if detail and code == "manifest.remoteNotFetched":
        url = re.search(r"https?://\S+", detail)
        return f"{base} ({url.group(0) if url else library_detail(detail)})."
    if detail and code in ( "asset.unsupportedFormat", "asset.unparseable", "general.error"):
        return f"{base} ({library_detail(detail)})."
    return base


def library_detail(detail: str) -> str:
    # Library errors arrive as "Kind: message"; the kind repeats what our sentence says.
    detail = detail.split(": ", 1)[-1] if ": " in detail else detail
    return detail.replace("deply", "deeply").strip().rstrip(".")

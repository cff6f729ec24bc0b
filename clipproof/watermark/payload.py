"""The payload and its channel code.

64 payload bits + a CRC-32 over them (detection) → 96 message bits → BCH(t=12) over GF(2^8)
(correction: up to 12 wrong bits, from the kernel's BCH library via bchlib) → 192 coded bits.

A clip without the watermark yields bits that are noise. For them to pass, the BCH decoder must
land within 12 bits of one of 2^96 codewords of length 188 (odds about 2^-30) *and* the CRC
must match (2^-32): ``FALSE_MATCH_PER_WORD``. ``decode`` tries up to 2^CHASE_BITS words per
candidate alignment (Chase decoding: the hard bits with their least reliable ones flipped, which
lets soft information correct more than 12 errors), and ``detect`` decodes at most
``MAX_ATTEMPTS`` alignments per clip: ``FALSE_MATCH_PER_CLIP`` bounds the odds that a clip
without the mark yields a payload.
"""
from __future__ import annotations

import math
from functools import lru_cache
import secrets
import zlib

import numpy as np

ALGORITHM = "io.clipproof.watermark.luma-tiles.1"   # the soft-binding assertion's ``alg``
PAYLOAD_BITS = 64
MESSAGE_BYTES = PAYLOAD_BITS // 8 + 4             # payload + CRC-32
BCH_T, BCH_M = 12, 8
CODED_BITS = 192                                   # 96 message bits + 96 bits of BCH parity (92 used)


@lru_cache(maxsize=1)
def _bch():
    import bchlib
    return bchlib.BCH(t=BCH_T, m=BCH_M)


def _bch_decodable_odds() -> float:
    """P(a random word decodes): codewords × Hamming-ball volume / all words (length 188)."""
    n, k = MESSAGE_BYTES * 8 + _bch().ecc_bits, MESSAGE_BYTES * 8
    ball = sum(math.comb(n, i) for i in range(BCH_T + 1))
    return min(1.0, 2.0 ** (k - n) * ball)


MAX_ATTEMPTS = 3      # candidate alignments decoded per clip
CHASE_BITS = 10       # least reliable bits whose flips are tried (Chase decoding): 2^10 words each
FALSE_MATCH_PER_WORD = _bch_decodable_odds() * 2.0 ** -32
FALSE_MATCH_PER_CLIP = MAX_ATTEMPTS * 2 ** CHASE_BITS * FALSE_MATCH_PER_WORD


def new_payload() -> bytes:
    """A fresh random 64-bit payload: the key a manifest is stored under."""
    return secrets.token_bytes(PAYLOAD_BITS // 8)


def encode(payload: bytes) -> np.ndarray:
    """8 payload bytes → CODED_BITS bits (uint8 0/1)."""
    if len(payload) != PAYLOAD_BITS // 8:
        raise ValueError(f"a payload is {PAYLOAD_BITS // 8} bytes, got {len(payload)}")
    message = payload + zlib.crc32(payload).to_bytes(4, "big")
    coded = message + bytes(_bch().encode(message))
    bits = np.unpackbits(np.frombuffer(coded, np.uint8))
    return np.pad(bits, (0, CODED_BITS - bits.size))


def decode(soft: np.ndarray) -> tuple[bytes, int] | None:
    """Soft bits (positive = 1, magnitude = reliability) → (payload, bits corrected), or None
    when no word within reach of the code passes the CRC. Chase decoding: the hard decision
    first, then with subsets of the ``CHASE_BITS`` least reliable bits flipped, fewest first."""
    soft = np.asarray(soft, np.float64)[:_coded_length()]
    hard = (soft > 0).astype(np.uint8)
    weakest = np.argsort(np.abs(soft))[:CHASE_BITS]
    bch = _bch()
    for flips in sorted(range(2 ** CHASE_BITS), key=int.bit_count):
        word = hard.copy()
        chosen = weakest[[i for i in range(CHASE_BITS) if flips >> i & 1]]
        word[chosen] ^= 1
        found = _decode_word(bch, word)
        if found is not None:
            return found[0], found[1] + len(chosen)
    return None


def _coded_length() -> int:
    return MESSAGE_BYTES * 8 + _bch().ecc_bits


def _decode_word(bch, bits: np.ndarray) -> tuple[bytes, int] | None:
    raw = np.packbits(np.pad(bits, (0, CODED_BITS - bits.size))).tobytes()
    message, ecc = bytearray(raw[:MESSAGE_BYTES]), bytearray(raw[MESSAGE_BYTES:MESSAGE_BYTES + bch.ecc_bytes])
    errors = bch.decode(bytes(message), bytes(ecc))
    if errors < 0:
        return None
    bch.correct(message, ecc)
    payload, crc = bytes(message[:-4]), int.from_bytes(message[-4:], "big")
    if zlib.crc32(payload) != crc:
        return None
    return payload, errors

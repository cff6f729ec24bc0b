"""The payload and its channel code.

64 payload bits + a CRC-16 over them (detection) → 80 message bits → BCH(t=12) over GF(2^8)
(correction: up to 12 wrong bits, from the kernel's BCH library via bchlib) → 172 coded bits.

A clip without the watermark yields bits that are noise. For them to pass, the BCH decoder must
land within 12 bits of one of 2^80 codewords of length 172 (odds about 2^-34) *and* the CRC
must match (2^-16): ``FALSE_MATCH_PER_WORD``. ``decode`` tries up to 2^CHASE_BITS words per
candidate alignment (Chase decoding: the hard bits with their least reliable ones flipped, which
lets soft information correct more than 12 errors) for ``MAX_ATTEMPTS`` alignments, and one
word for ``HARD_ATTEMPTS`` more, in each of ``STAGES`` search stages: ``FALSE_MATCH_PER_CLIP``
bounds the odds that a clip without the mark yields a payload.
"""
from __future__ import annotations

import binascii
import math
import secrets
from functools import lru_cache

import numpy as np

ALGORITHM = "io.clipproof.watermark.luma-tiles.1"   # the soft-binding assertion's ``alg``
PAYLOAD_BITS = 64
MESSAGE_BYTES = PAYLOAD_BITS // 8 + 2             # payload + CRC-16
BCH_T, BCH_M = 12, 8


@lru_cache(maxsize=1)
def _bch():
    import bchlib
    return bchlib.BCH(t=BCH_T, m=BCH_M)


CODED_BITS = MESSAGE_BYTES * 8 + _bch().ecc_bits    # 80 message bits + 92 bits of BCH parity = 172


def _bch_decodable_odds() -> float:
    """P(a random word decodes): codewords × Hamming-ball volume / all words (length CODED_BITS)."""
    ball = sum(math.comb(CODED_BITS, i) for i in range(BCH_T + 1))
    return min(1.0, 2.0 ** (MESSAGE_BYTES * 8 - CODED_BITS) * ball)


MAX_ATTEMPTS = 3      # candidate alignments Chase-decoded per search stage
HARD_ATTEMPTS = 10    # candidate alignments decoded as they are, per search stage
STAGES = 2
CHASE_BITS = 10       # least reliable bits whose flips are tried (Chase decoding): 2^10 words each
_FLIP_ORDER = sorted(range(2 ** CHASE_BITS), key=int.bit_count)
FALSE_MATCH_PER_WORD = _bch_decodable_odds() * 2.0 ** -16
FALSE_MATCH_PER_CLIP = STAGES * (MAX_ATTEMPTS * 2 ** CHASE_BITS + HARD_ATTEMPTS) * FALSE_MATCH_PER_WORD


def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (binascii's crc_hqx)."""
    return binascii.crc_hqx(data, 0xFFFF)


def new_payload() -> bytes:
    """A fresh random 64-bit payload: the key a manifest is stored under."""
    return secrets.token_bytes(PAYLOAD_BITS // 8)


def encode(payload: bytes) -> np.ndarray:
    """8 payload bytes → CODED_BITS bits (uint8 0/1)."""
    if len(payload) != PAYLOAD_BITS // 8:
        raise ValueError(f"a payload is {PAYLOAD_BITS // 8} bytes, got {len(payload)}")
    message = payload + _crc16(payload).to_bytes(2, "big")
    coded = message + bytes(_bch().encode(message))
    bits = np.unpackbits(np.frombuffer(coded, np.uint8))
    return bits[:CODED_BITS]            # the rest is the parity bytes' zero padding


def decode(soft: np.ndarray, *, chase: bool = True) -> tuple[bytes, int] | None:
    """Soft bits (positive = 1, magnitude = reliability) → (payload, bits corrected), or None
    when no word within reach of the code passes the CRC. Chase decoding: the hard decision
    first, then with subsets of the ``CHASE_BITS`` least reliable bits flipped, fewest first."""
    soft = np.asarray(soft, np.float64)[:CODED_BITS]
    hard = (soft > 0).astype(np.uint8)
    weakest = np.argsort(np.abs(soft))[:CHASE_BITS]
    bch = _bch()
    for flips in _FLIP_ORDER if chase else (0,):
        word = hard.copy()
        chosen = weakest[[i for i in range(CHASE_BITS) if flips >> i & 1]]
        word[chosen] ^= 1
        found = _decode_word(bch, word)
        if found is not None:
            return found[0], found[1] + len(chosen)
    return None


def _decode_word(bch, bits: np.ndarray) -> tuple[bytes, int] | None:
    raw = np.packbits(bits).tobytes()     # packbits pads the parity's last byte with zeros
    message, ecc = bytearray(raw[:MESSAGE_BYTES]), bytearray(raw[MESSAGE_BYTES:MESSAGE_BYTES + bch.ecc_bytes])
    errors = bch.decode(bytes(message), bytes(ecc))
    if errors < 0:
        return None
    bch.correct(message, ecc)
    payload, crc = bytes(message[:-2]), int.from_bytes(message[-2:], "big")
    if _crc16(payload) != crc:
        return None
    return payload, errors

"""Text from a file, made safe to show on a terminal or in one report line.

Signer names, claim generators, file names and the bytes a parser quotes are the uploader's
words. Printed raw, an escape sequence clears the reader's screen or retitles the window, and a
newline forges a report line ("Verdict: AUTHENTIC CAPTURE") under an untrusted clip. So every
control character (C0, DEL, C1), bidirectional override and line separator is shown escaped, as
Python writes it (``\\x1b``, ``\\n``, ``\\u202e``), and an overlong field is cut with a marker.
"""
from __future__ import annotations

import re

from clipproof.limits import MAX_FIELD_CHARS

# C0 and DEL and C1; Arabic letter mark, LRM/RLM, the embedding/override/isolate controls, and
# the Unicode line and paragraph separators (JSON readers and terminals treat them as newlines).
# Lone surrogates too: Python's stand-ins for the bytes of a file name that is not UTF-8
# (U+DC80-U+DCFF, shown as the byte, \xe9), which no UTF-8 page or terminal can carry.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if char in "\n\r\t":
        return repr(char)[1:-1]
    if 0xDC80 <= code <= 0xDCFF:
        code -= 0xDC00
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_text(text: object, limit: int | None = MAX_FIELD_CHARS) -> str:
    """``text`` with every unsafe character escaped, cut after ``limit`` characters (None: no cut)
    with a marker saying how much was left out."""
    text = str(text)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}…[{len(text) - limit} more characters]"
    return _UNSAFE.sub(_escape, text)

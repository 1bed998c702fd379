"""RFC 8785 (JCS) canonical JSON, fast enough for the send path.

:func:`canonical` serialises with orjson (``OPT_SORT_KEYS``) when that is provably the same
as JCS - every key ASCII (so code-point order equals UTF-16 order), no floats (ECMAScript
number formatting), integers within the IEEE-754 safe range - and otherwise with the
``rfc8785`` library (Trail of Bits), the reference. orjson and JCS escape strings alike
(``\\b \\t \\n \\f \\r \\" \\\\``, other controls as lowercase ``\\u00xx``, nothing else);
``tests/evidence/test_canonical.py`` checks the equivalence with hypothesis.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

SAFE_INT = 2**53 - 1


class NotCanonicalizable(ValueError):
    """The value has no JSON form under RFC 8785 (e.g. an integer beyond 2**53)."""


def _fast_ok(value: Any) -> bool:
    if value is None or value is True or value is False or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -SAFE_INT <= value <= SAFE_INT
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not k.isascii() or not _fast_ok(v):
                return False
        return True
    if isinstance(value, list | tuple):
        return all(_fast_ok(v) for v in value)
    return False


def canonical(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value`` (JSON types only)."""
    if _fast_ok(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise NotCanonicalizable(str(exc)) from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

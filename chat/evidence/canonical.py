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


class NotCanonicalizable(ValueError):
    """The value has no JSON form under RFC 8785 (e.g. an integer beyond 2**53)."""


def _fast_ok(value: Any) -> bool:
    """True when orjson's sorted output is the JCS form (integer range checked by orjson)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not k.isascii():
                return False
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                continue
            if not _fast_ok(v):
                return False
        return True
    if t is list or t is tuple:
        return all(map(_fast_ok, value))
    return False


_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def canonical(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value`` (JSON types only)."""
    if _fast_ok(value):
        try:
            return orjson.dumps(value, option=_OPTS)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 2**53: let the reference say so
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise NotCanonicalizable(str(exc)) from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""RFC 8785 (JCS) canonical JSON, fast enough for the send path.

:func:`canonical` serialises with orjson (``OPT_SORT_KEYS``) when that is provably the same
as JCS - every key ASCII (so code-point order equals UTF-16 order), no floats (ECMAScript
number formatting), integers within the IEEE-754 safe range - and otherwise with the
``rfc8785`` library (Trail of Bits), the reference. orjson and JCS escape strings alike
(``\\b \\t \\n \\f \\r \\" \\\\``, other controls as lowercase ``\\u00xx``, nothing else);
``tests/evidence/test_canonical.py`` checks the equivalence with hypothesis.

Every number must be finite and within the IEEE-754 safe range, ±(2**53 - 1)
(:func:`check_numbers`): a float beyond it has an integral JCS form (``1e16`` is written
``10000000000000000``) that reads back as an integer JCS refuses, so the stored form would
not round-trip and an untouched entry would verify as altered. The log refuses such a
payload when it is appended (``chain.extend``, :class:`NotCanonicalizable`); the HTTP edge
refuses it earlier (400). :func:`canonical` itself stays plain RFC 8785.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785


class NotCanonicalizable(ValueError):
    """The value has no JSON form under RFC 8785 (e.g. an integer beyond 2**53)."""


MAX_SAFE = 2**53 - 1


def check_numbers(value: Any, where: str = "value") -> None:
    """Raise :class:`NotCanonicalizable` naming the first number that is not finite or not
    within ±(2**53 - 1); ``where`` prefixes the path (e.g. ``data``)."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, v = stack.pop()
        t = type(v)
        if t is dict:
            stack.extend((f"{path}.{k}", x) for k, x in v.items())
        elif t is list or t is tuple:
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
        elif t is int or t is float:
            if v != v or abs(v) > MAX_SAFE:  # NaN, infinities and beyond the safe range
                raise NotCanonicalizable(
                    f"the number at {path} is not finite or not within ±(2^53-1) "
                    "(JSON numbers must be exactly representable; send big ids as strings)")


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

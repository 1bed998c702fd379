"""RFC 8785: the fast path agrees with the reference library; the RFC's own examples."""

from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.evidence.canonical import NotCanonicalizable, _fast_ok, canonical

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=5),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_equals_reference(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127), max_size=6),
                       st.text() | st.integers(-(2**53) + 1, 2**53 - 1), max_size=6))
def test_fast_path_taken_and_identical(value: dict[str, Any]) -> None:
    assert _fast_ok(value)
    assert canonical(value) == rfc8785.dumps(value)


def test_rfc8785_examples() -> None:
    # RFC 8785 §3.2.2 / appendix: ordering by UTF-16 code units, number forms, escapes.
    assert canonical({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'
    assert canonical({"\u20ac": 1, "\r": 2, "1": 3, "\U0001f600": 4, "\u00f6": 5}) == (
        '{"\\r":2,"1":3,"\u00f6":5,"\u20ac":1,"\U0001f600":4}'.encode())
    assert canonical([1e21, 1e-7, 0.5, -0.0, 333333333.3333333]) == (
        b"[1e+21,1e-7,0.5,0,333333333.3333333]")
    assert canonical("\u0001\n\"\\é") == b'"\\u0001\\n\\"\\\\\xc3\xa9"'


def test_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(NotCanonicalizable):
        canonical(2**60)
    with pytest.raises(NotCanonicalizable):
        canonical(math.nan)

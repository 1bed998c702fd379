"""The frame decoder: every client frame type, every bad field, and fuzzing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.errors import BadFrame
from chat.frames import (
    Delete,
    Edit,
    Hello,
    Ping,
    Read,
    Send,
    Thanks,
    Token,
    Typing,
    decode,
    encode,
    error_frame,
    ok_frame,
)

MAX_BODY = 100


def dec(obj: Any) -> Any:
    return decode(orjson.dumps(obj), max_body_chars=MAX_BODY)


def bad(obj: Any) -> BadFrame:
    with pytest.raises(BadFrame) as info:
        dec(obj)
    assert info.value.code == "bad_frame"
    return info.value


VALID: list[tuple[dict[str, Any], Any]] = [
    ({"type": "hello", "id": "1", "token": "tok"}, Hello("1", "tok", {})),
    ({"type": "hello", "id": "1", "token": "tok", "resume": {"t1": 3, "t2": 0}},
     Hello("1", "tok", {"t1": 3, "t2": 0})),
    ({"type": "send", "id": "2", "thread": "t", "client_msg_id": "c", "body": "やあ"},
     Send("2", "t", "c", "やあ")),
    ({"type": "read", "id": 3, "thread": "t", "seq": 7}, Read("3", "t", 7)),
    ({"type": "typing", "thread": "t"}, Typing(None, "t")),
    ({"type": "edit", "id": "e", "thread": "t", "message": "m", "body": "new"},
     Edit("e", "t", "m", "new")),
    ({"type": "delete", "id": "d", "thread": "t", "message": "m"}, Delete("d", "t", "m")),
    ({"type": "thanks", "id": "k", "thread": "t", "message": "m"}, Thanks("k", "t", "m")),
    ({"type": "ping", "id": "p"}, Ping("p")),
    ({"type": "token", "id": "r", "token": "new"}, Token("r", "new")),
]


@pytest.mark.parametrize(("obj", "frame"), VALID, ids=[o["type"] for o, _ in VALID])
def test_each_frame_type_decodes_to_its_class(obj: dict[str, Any], frame: Any) -> None:
    assert dec(obj) == frame
    assert decode(orjson.dumps(obj).decode(), max_body_chars=MAX_BODY) == frame  # str too


# (type, required fields with a good value, kind of each field)
REQUIRED: dict[str, dict[str, Any]] = {
    "hello": {"token": "tok"},
    "send": {"thread": "t", "client_msg_id": "c", "body": "b"},
    "read": {"thread": "t", "seq": 1},
    "typing": {"thread": "t"},
    "edit": {"thread": "t", "message": "m", "body": "b"},
    "delete": {"thread": "t", "message": "m"},
    "thanks": {"thread": "t", "message": "m"},
    "token": {"token": "tok"},
}
CASES = [(t, f) for t, fs in REQUIRED.items() for f in fs]


@pytest.mark.parametrize(("type_", "field"), CASES)
def test_missing_field_is_bad_frame_with_re(type_: str, field: str) -> None:
    obj = {"type": type_, "id": "req-1", **REQUIRED[type_]}
    del obj[field]
    err = bad(obj)
    assert err.extra == {"re": "req-1"} and field in err.message


@pytest.mark.parametrize(("type_", "field"), CASES)
def test_ill_typed_field_is_bad_frame_with_re(type_: str, field: str) -> None:
    wrongs: list[Any] = (
        ["1", -1, 1.5, True, [], {}, 2**62]
        if field == "seq" else [1, True, [], {"a": "b"}, 1.5]
    )
    for wrong in wrongs:
        obj = {"type": type_, "id": 42, **REQUIRED[type_], field: wrong}
        err = bad(obj)
        assert err.extra == {"re": "42"}, (field, wrong)


@pytest.mark.parametrize("field", ["thread", "client_msg_id", "body"])
def test_empty_or_too_long_text_is_bad_frame(field: str) -> None:
    base = {"type": "send", "id": "x", **REQUIRED["send"]}
    assert bad({**base, field: ""}).extra == {"re": "x"}
    limit = MAX_BODY if field == "body" else 128
    bad({**base, field: "a" * (limit + 1)})
    assert dec({**base, field: "a" * limit})


def test_oversize_body_is_bad_frame() -> None:
    err = bad({"type": "edit", "id": "e", "thread": "t", "message": "m", "body": "x" * 101})
    assert err.extra == {"re": "e"} and "100" in err.message


@pytest.mark.parametrize("resume", [[], "t", {"t": -1}, {"t": "3"}, {"t": True},
                                    {"": 1}, {"x" * 129: 1}, {"t": 2**62}])
def test_bad_resume_is_bad_frame(resume: Any) -> None:
    assert bad({"type": "hello", "id": "h", "token": "t", "resume": resume}).extra == {"re": "h"}


def test_unknown_type_carries_re() -> None:
    err = bad({"type": "launch", "id": "z"})
    assert err.extra == {"re": "z"} and "launch" in err.message
    assert bad({"id": "z"}).extra == {"re": "z"}
    assert bad({"type": 5, "id": "z"}).extra == {"re": "z"}


@pytest.mark.parametrize("raw", [b"", b"{", b"nope", b"\xff\xfe", b'{"type": "ping"',
                                 b"[1, 2]", b"null", b'"ping"', b"42", b"1e999999",
                                 b'{"type": "read", "thread": "t", "seq": 99999999999999999999}'])
def test_not_json_or_not_object_is_bad_frame(raw: bytes) -> None:
    with pytest.raises(BadFrame) as info:
        decode(raw, max_body_chars=MAX_BODY)
    assert info.value.extra.get("re") is None


@pytest.mark.parametrize("rid", [True, 1.5, [], {}, "i" * 129])
def test_bad_request_id_is_bad_frame(rid: Any) -> None:
    bad({"type": "ping", "id": rid})


def test_server_frame_helpers() -> None:
    assert orjson.loads(encode(ok_frame("r", seq=3))) == {"type": "ok", "re": "r", "seq": 3}
    assert error_frame(None, "bad_frame", "x", a=1) == {
        "type": "error", "re": None, "code": "bad_frame", "message": "x", "a": 1}


def _never_crashes(data: str | bytes) -> None:
    try:
        decode(data, max_body_chars=MAX_BODY)
    except BadFrame as exc:
        assert exc.code == "bad_frame"
        re = exc.extra.get("re")
        assert re is None or (isinstance(re, str) and len(re) <= 128)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_bad_frame(data: bytes) -> None:
    _never_crashes(data)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_random_text_only_ever_raises_bad_frame(data: str) -> None:
    _never_crashes(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(["type", "id", "thread", "client_msg_id", "body", "seq", "token",
                          "resume", "message"])
TYPES = st.sampled_from(["hello", "send", "read", "typing", "edit", "delete", "thanks",
                         "ping", "token", "other"])


@settings(max_examples=600, deadline=None)
@given(st.one_of(
    JSON,
    st.dictionaries(FIELDS, JSON, max_size=6),
    st.builds(lambda t, d: {**d, "type": t}, TYPES, st.dictionaries(FIELDS, JSON, max_size=6)),
))
def test_random_json_only_ever_raises_bad_frame(value: Any) -> None:
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return  # e.g. integers beyond 64 bits: not something a client can send as JSON here
    _never_crashes(data)

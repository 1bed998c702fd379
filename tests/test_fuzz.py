"""Fuzzing the frame decoder and the live connection handler (both back ends).

* :func:`chat.frames.decode` on random bytes, random text, random JSON values and random
  objects (known ``type`` with fields of the wrong type, unknown types, huge numbers,
  nesting, unicode) returns a frame or raises ``BadFrame``, never anything else.
* On a live connection, each such frame is answered by one ``error`` frame with code
  ``bad_frame`` (with ``re`` when the frame carried a usable ``id``) or, for a well-formed
  frame, by ``ok`` or one of the documented errors (``forbidden``, ``not_found``,
  ``rate_limited``, ``bad_request``); the connection stays open, a valid ``send`` afterwards
  still works, and the server logs no error (no unhandled exception anywhere).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from chat import frames as F
from chat.errors import BadFrame
from tests.support import Client, Node

FRAME_TYPES = ("hello", "send", "read", "typing", "edit", "delete", "thanks", "ping", "token")
ANSWER_CODES = {"forbidden", "not_found", "rate_limited", "bad_request"}
WATCHED_LOGGERS = ("tsunagu", "chat", "aiohttp", "asyncio")

# --- strategies
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
wrong_type = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                       st.lists(st.text(max_size=5), max_size=2),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                       st.just(""))
wrong_for_id = wrong_type | st.text(min_size=129, max_size=140)  # ids: at most 128 chars
wrong_for_seq = st.one_of(st.none(), st.booleans(), st.integers(max_value=-1),
                          st.integers(min_value=2**62, max_value=2**64 - 1),
                          st.floats(allow_nan=False), st.text(max_size=5),
                          st.lists(st.integers(), max_size=2))


@st.composite
def known_type_wrong_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A frame of a known type with at least one required field missing or mistyped."""
    type_ = draw(st.sampled_from(["send", "read", "typing", "edit", "delete", "thanks",
                                  "hello", "token"]))
    fields = {
        "send": ["thread", "client_msg_id", "body"], "read": ["thread", "seq"],
        "typing": ["thread"], "edit": ["thread", "message", "body"],
        "delete": ["thread", "message"], "thanks": ["thread", "message"],
        "hello": ["token"], "token": ["token"],
    }[type_]
    obj: dict[str, Any] = {"type": type_}
    for name in fields:
        obj[name] = draw(st.integers(0, 10)) if name == "seq" else draw(st.text(min_size=1,
                                                                              max_size=20))
    bad = draw(st.sampled_from(fields))
    if draw(st.booleans()):
        del obj[bad]
    else:
        obj[bad] = draw(wrong_for_seq if bad == "seq" else wrong_type
                        if bad in ("token", "body") else wrong_for_id)
    if draw(st.booleans()):
        obj["id"] = draw(st.text(max_size=20))
    obj.update(draw(st.dictionaries(st.text(max_size=8).filter(lambda k: k not in obj),
                                    json_values, max_size=2)))
    return obj


@st.composite
def random_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Objects with a known or unknown type and random fields (some of them right)."""
    obj: dict[str, Any] = draw(st.dictionaries(
        st.sampled_from(["thread", "client_msg_id", "body", "seq", "message", "token", "id",
                         "resume"]) | st.text(max_size=8),
        json_values, max_size=5))
    obj["type"] = draw(st.sampled_from(FRAME_TYPES) | st.text(max_size=12) | json_values)
    return obj


def _is_bad(data: str | bytes) -> bool:
    try:
        F.decode(data, max_body_chars=10000)
    except BadFrame:
        return True
    return False


# --- the decoder, offline
@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_decode_random_input_is_a_frame_or_bad_frame(data: str | bytes) -> None:
    try:
        frame = F.decode(data, max_body_chars=10000)
    except BadFrame as exc:
        assert exc.code == "bad_frame" and exc.message
    else:
        assert isinstance(frame, F.Hello | F.Send | F.Read | F.Typing | F.Edit | F.Delete
                          | F.Thanks | F.Ping | F.Token)


def _strict_json(data: str) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def _dumps(value: Any) -> str:
    """JSON text of any value, integers beyond 64 bits included (orjson refuses them)."""
    return json.dumps(value, ensure_ascii=False)


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, random_objects()))
def test_decode_random_json_is_a_frame_or_bad_frame(value: Any) -> None:
    data = _dumps(value).encode()
    if not isinstance(value, dict):
        with pytest.raises(BadFrame):
            F.decode(data, max_body_chars=10000)
        return
    try:
        F.decode(data, max_body_chars=10000)
    except BadFrame as exc:
        assert exc.code == "bad_frame"
        if isinstance(value.get("id"), str) and len(value["id"]) <= F.MAX_ID_CHARS \
                and isinstance(value.get("type"), str):
            assert exc.extra.get("re") == value["id"]


@settings(max_examples=300, deadline=None)
@given(known_type_wrong_fields())
def test_decode_known_type_with_wrong_fields_is_bad_frame(obj: dict[str, Any]) -> None:
    with pytest.raises(BadFrame):
        F.decode(_dumps(obj).encode(), max_body_chars=10000)


@pytest.mark.parametrize("data", [
    "", " ", "null", "[]", "1", '"hello"', "{", '{"type":', "{}", '{"type":null}',
    '{"type":"send","thread":"t","client_msg_id":"c","body":"' + "x" * 10001 + '"}',
    '{"type":"read","thread":"t","seq":1' + "0" * 40 + "}",
    '{"type":"read","thread":"t","seq":-1}', '{"type":"read","thread":"t","seq":1.5}',
    '{"type":"read","thread":"t","seq":true}', '{"type":"send","id":' + "9" * 30 + "}",
    "[" * 5000 + "]" * 5000, '{"a":' * 2000 + "1" + "}" * 2000,
    '{"type":"hello","token":"x","resume":{"t":-1}}', '{"type":"hello","token":"x","resume":[]}',
    '{"type":"ping","id":{"x":1}}', '{"type":"\\ud800"}', "\ufeff{}", '{"type":"send"}\n{}',
])
def test_decode_edge_cases_are_bad_frame(data: str) -> None:
    with pytest.raises(BadFrame):
        F.decode(data, max_body_chars=10000)


# --- the live handler
live_frames = st.one_of(
    st.tuples(st.just("binary"), st.binary(max_size=300)),
    st.tuples(st.just("text"), st.text(max_size=300)),
    st.tuples(st.just("text"), st.binary(max_size=300).map(
        lambda b: b.decode("utf-8", "ignore"))),
    st.tuples(st.just("json"), json_values),
    st.tuples(st.just("json"), known_type_wrong_fields()),
    st.tuples(st.just("json"), random_objects()),
    st.tuples(st.just("real"), random_objects()),  # aimed at the real thread
)


@pytest.fixture
def error_log(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.ERROR)
    return caplog


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.ERROR and r.name.split(".")[0] in WATCHED_LOGGERS]


class Probe:
    """One connection; each fuzz frame is followed by a ping, and what came between is
    the answer to the fuzz frame."""

    def __init__(self, node: Node, thread: str, user: str) -> None:
        self.node = node
        self.thread = thread
        self.user = user
        self.client: Client | None = None
        self.n = 0

    async def connect(self) -> Client:
        if self.client is None:
            self.client = await Client(self.node.ws_url,
                                       self.node.token(self.user, "client")).connect()
        return self.client

    async def answers_to(self, kind: str, payload: str | bytes) -> list[dict[str, Any]]:
        client = await self.connect()
        assert client.ws is not None
        if isinstance(payload, bytes):
            await client.ws.send_bytes(payload)
        else:
            await client.ws.send_str(payload)
        self.n += 1
        pong = await client.request({"type": "ping", "id": f"probe-{self.n}"})
        assert pong["type"] == "ok", pong
        assert not client.ws.closed
        return [f for f in client.drain_pushes() if f["type"] in ("ok", "error")]

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


async def _check_one(probe: Probe, kind: str, value: Any) -> None:
    if kind == "binary":
        answers = await probe.answers_to(kind, value)
        assert [(a["type"], a["code"]) for a in answers] == [("error", "bad_frame")], answers
        return
    if kind == "real" and isinstance(value, dict):
        value = {**value, "thread": probe.thread}
    data = value if kind == "text" else _dumps(value)
    if len(data.encode()) > 60000:
        return
    bad = _is_bad(data)
    if not bad:
        frame = F.decode(data, max_body_chars=10000)
        # a bad token on a well-formed token/hello frame ends the socket (4001): not fuzzed
        # live; a valid frame without id (typing) may get no answer at all
        assume(not isinstance(frame, F.Token | F.Hello))
    answers = await probe.answers_to(kind, data)
    if bad:
        assert [(a["type"], a.get("code")) for a in answers] == [("error", "bad_frame")], (
            data, answers)
        # The error names the frame's id whenever the id can be read: an object of strict
        # JSON (NaN, Infinity and integers beyond 64 bits are not JSON to the decoder).
        if isinstance(value, dict) and isinstance(value.get("id"), str) \
                and len(value["id"]) <= F.MAX_ID_CHARS and isinstance(value.get("type"), str) \
                and _strict_json(data):
            assert answers[0]["re"] == value["id"]
    else:
        assert len(answers) <= 1, answers
        for a in answers:
            assert a["type"] == "ok" or a["code"] in ANSWER_CODES, (data, a)


def test_live_handler_survives_fuzz(settings_factory: Any, error_log: Any) -> None:
    loop = asyncio.new_event_loop()
    node = Node(settings_factory(rate_per_s=100000.0, rate_burst=100000))
    loop.run_until_complete(node.start())
    tag = secrets.token_hex(3)
    user, other = f"fuzz-{tag}", f"peer-{tag}"
    thread = loop.run_until_complete(node.create_thread((user, "client"), (other, "worker")))
    probe = Probe(node, thread["id"], user)
    sent: list[int] = []

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(st.lists(live_frames, min_size=1, max_size=4))
    @example([("text", "[" * 5000 + "]" * 5000)])
    @example([("text", '{"type":"read","thread":"t","seq":' + "9" * 40 + "}")])
    @example([("real", {"type": "send", "client_msg_id": "c\x00", "body": "nul \x00 body"})])
    @example([("real", {"type": "send", "client_msg_id": "c-nul", "body": "nul \x00"})])
    @example([("real", {"type": "read", "seq": 2**61})])
    @example([("real", {"type": "edit", "message": "m\x00", "body": "x"})])
    @example([("json", {"type": "send", "thread": "t\x00", "client_msg_id": "c", "body": "b"})])
    @example([("real", {"type": "send", "client_msg_id": "c-u", "body": "🎌 \U0010ffff ｶﾅ"})])
    def run(items: list[tuple[str, Any]]) -> None:
        async def one() -> None:
            for kind, value in items:
                await _check_one(probe, kind, value)
            # the connection still works: a valid send is stored and acknowledged
            client = await probe.connect()
            ok = await client.send(probe.thread, f"still here {len(sent)}")
            assert ok["type"] == "ok", ok
            sent.append(ok["message"]["seq"])
            assert not _errors(error_log), _errors(error_log)

        loop.run_until_complete(one())

    try:
        run()
        assert sent == sorted(sent) and len(set(sent)) == len(sent)
        assert not _errors(error_log), _errors(error_log)
    finally:
        loop.run_until_complete(probe.close())
        loop.run_until_complete(node.stop())
        loop.close()

"""WebSocket frames: one typed class per client frame, decoded and checked at the edge.

:func:`decode` turns the text of one frame into a frame object or raises
:class:`~chat.errors.BadFrame` carrying the request id (``re``) when one could be read, so the
gateway can answer with an ``error`` frame and keep the connection. No raw dict travels
inward. Server frames are built by the small ``*_frame`` helpers and encoded with orjson.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import BadFrame

MAX_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class Hello:
    id: str | None
    token: str
    resume: dict[str, int]


@dataclass(slots=True)  # not frozen: see chat.models.Message
class Send:
    id: str | None
    thread: str
    client_msg_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Read:
    id: str | None
    thread: str
    seq: int


@dataclass(frozen=True, slots=True)
class Typing:
    id: str | None
    thread: str


@dataclass(frozen=True, slots=True)
class Edit:
    id: str | None
    thread: str
    message: str
    body: str


@dataclass(frozen=True, slots=True)
class Delete:
    id: str | None
    thread: str
    message: str


@dataclass(frozen=True, slots=True)
class Thanks:
    id: str | None
    thread: str
    message: str


@dataclass(frozen=True, slots=True)
class Ping:
    id: str | None


@dataclass(frozen=True, slots=True)
class Token:
    """Replace the connection's token before it expires (same user only)."""

    id: str | None
    token: str


Frame = Hello | Send | Read | Typing | Edit | Delete | Thanks | Ping | Token


class _Fields:
    """Typed access to a frame object's fields; every failure is a BadFrame with ``re``."""

    __slots__ = ("obj", "re", "type")

    def __init__(self, obj: dict[str, Any], re: str | None, type_: str) -> None:
        self.obj = obj
        self.re = re
        self.type = type_

    def _fail(self, why: str) -> BadFrame:
        return BadFrame(f"{self.type}: {why}", re=self.re)

    def text(self, name: str, *, max_chars: int = MAX_ID_CHARS, allow_empty: bool = False) -> str:
        value = self.obj.get(name)
        if value is None:
            raise self._fail(f"missing field '{name}'")
        if not isinstance(value, str):
            raise self._fail(f"field '{name}' must be a string")
        if not value and not allow_empty:
            raise self._fail(f"field '{name}' must not be empty")
        if len(value) > max_chars:
            raise self._fail(f"field '{name}' is longer than {max_chars} characters")
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail a whole
            # group-commit batch (everyone's messages) in storage.
            raise self._fail(f"field '{name}' must not contain NUL characters")
        return value

    def seq(self, name: str) -> int:
        value = self.obj.get(name)
        if value is None:
            raise self._fail(f"missing field '{name}'")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:
            raise self._fail(f"field '{name}' must be a non-negative integer")
        return value


def _resume(f: _Fields) -> dict[str, int]:
    raw = f.obj.get("resume")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise f._fail("field 'resume' must be an object of thread id to last seq")
    if len(raw) > 10000:
        raise f._fail("field 'resume' names more than 10000 threads")
    out: dict[str, int] = {}
    for key, value in raw.items():
        if not key or len(key) > MAX_ID_CHARS:
            raise f._fail("field 'resume' has a bad thread id")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:
            raise f._fail(f"field 'resume' has a bad seq for thread {key!r}")
        out[key] = value
    return out


def decode(data: str | bytes, *, max_body_chars: int) -> Frame:
    """Decode one client frame. Raises :class:`BadFrame` (with ``re`` when known)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadFrame("frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise BadFrame("frame must be a JSON object")
    raw_id = obj.get("id")
    re: str | None
    if raw_id is None:
        re = None
    elif isinstance(raw_id, str) and len(raw_id) <= MAX_ID_CHARS:
        re = raw_id
    elif isinstance(raw_id, int) and not isinstance(raw_id, bool):
        re = str(raw_id)
    else:
        raise BadFrame("field 'id' must be a string of at most 128 characters")
    type_ = obj.get("type")
    if not isinstance(type_, str):
        raise BadFrame("missing field 'type'", re=re)
    f = _Fields(obj, re, type_)
    match type_:
        case "send":
            return Send(
                re,
                f.text("thread"),
                f.text("client_msg_id"),
                f.text("body", max_chars=max_body_chars),
            )
        case "read":
            return Read(re, f.text("thread"), f.seq("seq"))
        case "typing":
            return Typing(re, f.text("thread"))
        case "hello":
            return Hello(re, f.text("token", max_chars=16384), _resume(f))
        case "edit":
            return Edit(
                re, f.text("thread"), f.text("message"), f.text("body", max_chars=max_body_chars)
            )
        case "delete":
            return Delete(re, f.text("thread"), f.text("message"))
        case "thanks":
            return Thanks(re, f.text("thread"), f.text("message"))
        case "ping":
            return Ping(re)
        case "token":
            return Token(re, f.text("token", max_chars=16384))
    raise BadFrame(f"unknown frame type {type_[:40]!r}", re=re)


def encode(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


def ok_frame(re: str | None, **fields: Any) -> dict[str, Any]:
    return {"type": "ok", "re": re, **fields}


def error_frame(re: str | None, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "re": re, "code": code, "message": message, **extra}

"""Contract events coming in from the platform: decoding, validation and signatures. No I/O.

A request body is one JSON object::

    {"id": "evt_123", "type": "deadline.changed", "thread": "t_abc",
     "data": {"deadline": "2026-07-01T15:00:00Z"}}

:func:`parse_event` returns a typed :class:`ContractEvent` or raises
:class:`~chat.errors.BadRequest` naming the field. :func:`verify_signature` checks
``X-Tsunagu-Signature: sha256=<hex>`` = HMAC-SHA256(secret, ``timestamp + "." + body``) and
that ``X-Tsunagu-Timestamp`` (Unix seconds) is inside the replay window.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from chat.errors import BadRequest, Unauthorized

# type -> required data fields (name -> kind); optional fields are listed in OPTIONAL.
REQUIRED: dict[str, dict[str, str]] = {
    "contract.concluded": {"client": "user", "worker": "user", "amount": "int",
                           "deadline": "time"},
    "deposit.requested": {},
    "deposit.paid": {},
    "deposit.refunded": {},
    "deadline.changed": {"deadline": "time"},
    "delivery.submitted": {},
    "correction.requested": {},
    "contract.accepted": {},
    "contract.cancelled": {},
    "review.requested": {},
}
OPTIONAL: dict[str, str] = {
    "currency": "str", "title": "str", "client_name": "str", "worker_name": "str",
    "reason": "str", "note": "str",
}
EVENT_TYPES = tuple(REQUIRED)
MAX_ID = 128
MAX_TEXT = 500
# Times outside these years are refused (400): a date like 0001-01-01 or 9999-12-31 cannot
# be shown in every time zone (OverflowError) and is never a real deadline.
MIN_YEAR, MAX_YEAR = 2000, 2200
MAX_AMOUNT = 2**63 - 1  # BIGINT


@dataclass(frozen=True, slots=True)
class ContractEvent:
    id: str
    type: str
    thread: str
    data: dict[str, Any]  # validated: times as int microseconds
    digest: str  # sha256 of the canonical event, to tell a retry from a reuse of the id

    def time(self, name: str) -> int:
        value: int = self.data[name]
        return value

    def text(self, name: str, default: str = "") -> str:
        return str(self.data.get(name, default))


def parse_time(value: Any, name: str) -> int:
    if not isinstance(value, str) or len(value) > 64:
        raise BadRequest(f"data.{name} must be an RFC 3339 time string", field=f"data.{name}")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"data.{name} is not an RFC 3339 time: {value[:40]!r}",
                         field=f"data.{name}") from None
    if dt.tzinfo is None:
        raise BadRequest(f"data.{name} must carry a UTC offset", field=f"data.{name}")
    try:
        utc = dt.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise BadRequest(f"data.{name} must be a time in the years {MIN_YEAR}..{MAX_YEAR}: "
                         f"{value[:40]!r}", field=f"data.{name}")
    return int(utc.timestamp() * 1_000_000)


def _no_control(value: str, what: str, *, text: bool = False) -> None:
    """Refuse NUL (PostgreSQL cannot store it) and, in ids, every control character."""
    bad = "\x00" in value if text else any(ord(c) < 32 or ord(c) == 127 for c in value)
    if bad:
        raise BadRequest(f"{what} must not contain control characters", field=what)


def _field(kind: str, value: Any, name: str) -> Any:
    if kind == "time":
        return parse_time(value, name)
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or not \
                0 <= value <= MAX_AMOUNT:
            raise BadRequest(f"data.{name} must be an integer in 0..{MAX_AMOUNT}",
                             field=f"data.{name}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"data.{name} must be a non-empty string", field=f"data.{name}")
    limit = MAX_ID if kind == "user" else MAX_TEXT
    if len(value) > limit:
        raise BadRequest(f"data.{name} is longer than {limit} characters", field=f"data.{name}")
    _no_control(value, f"data.{name}", text=kind != "user")
    return value


def parse_event(body: bytes) -> ContractEvent:
    """Decode and validate one event; raise BadRequest saying what is wrong."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("the body must be a JSON object")
    for name in ("id", "type", "thread"):
        value = doc.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_ID:
            raise BadRequest(f"field '{name}' must be a string of 1..{MAX_ID} characters",
                             field=name)
        _no_control(value, name)
    type_ = doc["type"]
    if type_ not in REQUIRED:
        raise BadRequest(f"unknown event type {type_!r}; known: {', '.join(EVENT_TYPES)}",
                         field="type")
    raw = doc.get("data", {})
    if not isinstance(raw, dict):
        raise BadRequest("field 'data' must be an object")
    data: dict[str, Any] = {}
    for name, kind in REQUIRED[type_].items():
        if name not in raw:
            raise BadRequest(f"{type_} needs data.{name}", field=f"data.{name}")
        data[name] = _field(kind, raw[name], name)
    for name, kind in OPTIONAL.items():
        if name in raw and raw[name] is not None:
            data[name] = _field(kind, raw[name], name)
    if type_ == "contract.concluded" and data["client"] == data["worker"]:
        raise BadRequest("data.client and data.worker must differ")
    canonical = orjson.dumps({"id": doc["id"], "type": type_, "thread": doc["thread"],
                              "data": data}, option=orjson.OPT_SORT_KEYS)
    return ContractEvent(doc["id"], type_, doc["thread"], data,
                         hashlib.sha256(canonical).hexdigest())


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Tsunagu-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str | None, signature: str | None,
                     body: bytes, *, now_s: float, window_s: float) -> None:
    """Raise Unauthorized unless the signature matches and the timestamp is fresh."""
    if not secret:
        raise Unauthorized("signed events are not accepted: no event secret configured")
    if not timestamp or not signature:
        raise Unauthorized("missing X-Tsunagu-Timestamp or X-Tsunagu-Signature header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise Unauthorized("X-Tsunagu-Timestamp must be Unix seconds") from None
    expected = sign(secret, ts, body)
    # compare bytes: compare_digest raises TypeError on a str that is not ASCII
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        raise Unauthorized("bad signature")
    if abs(now_s - ts) > window_s:
        raise Unauthorized("stale or replayed request: timestamp outside the replay window")

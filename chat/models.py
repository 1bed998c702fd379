"""Domain objects shared by storage, gateway and HTTP API. Frozen; serialised by ``to_json``.

Times are stored as integer microseconds since the epoch (portable between SQLite and
PostgreSQL, cheap to compare) and rendered as RFC 3339 UTC strings on the wire.
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

THREAD_KINDS = ("inquiry", "contract", "team")
STAGES = ("inquiry", "deposit_pending", "in_progress", "delivered", "closed")
PARTICIPANT_ROLES = ("client", "worker", "member", "observer")
MESSAGE_KINDS = ("user", "system")


def now_us() -> int:
    return time.time_ns() // 1000


@functools.lru_cache(maxsize=8192)
def _rfc3339(us: int) -> str:
    return (
        datetime.fromtimestamp(us / 1_000_000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def rfc3339(us: int | None) -> str | None:
    # Cached: a message's time is rendered once for its ack and once per recipient's push.
    return None if us is None else _rfc3339(us)


_entropy = bytearray()


def _random8() -> bytes:
    """8 bytes from the OS's CSPRNG, drawn 4 KiB at a time (one syscall per 512 ids)."""
    global _entropy
    if len(_entropy) < 8:
        _entropy = bytearray(secrets.token_bytes(4096))
    out = bytes(_entropy[-8:])
    del _entropy[-8:]
    return out


def _forget_entropy() -> None:
    _entropy.clear()  # a forked child must not reuse its parent's random bytes


os.register_at_fork(after_in_child=_forget_entropy)


def new_id(prefix: str) -> str:
    """A random id: prefix, then 40 bits of time (ms, sortable) and 64 random bits in hex."""
    return f"{prefix}_{(time.time_ns() // 1_000_000) & 0xFFFFFFFFFF:010x}{_random8().hex()}"


@dataclass(frozen=True, slots=True)
class Participant:
    user_id: str
    role: str
    joined_at: int
    read_seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "role": self.role,
            "joined_at": rfc3339(self.joined_at),
            "read_seq": self.read_seq,
        }


@dataclass(frozen=True, slots=True)
class Thread:
    id: str
    kind: str
    title: str
    stage: str
    ref: dict[str, Any]
    last_seq: int
    created_at: int
    updated_at: int
    participants: tuple[Participant, ...] = ()

    def role_of(self, user_id: str) -> str | None:
        for p in self.participants:
            if p.user_id == user_id:
                return p.role
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "stage": self.stage,
            "ref": self.ref,
            "last_seq": self.last_seq,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "participants": [p.to_json() for p in self.participants],
        }


@dataclass(slots=True)
class ThreadBrief:
    """What a connection keeps about one of its threads (mutable: updated by events)."""

    last_seq: int
    stage: str
    members: dict[str, str]  # user id -> participant role


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """One row of a user's thread list."""

    thread: Thread
    role: str
    read_seq: int
    unread: int

    def to_json(self) -> dict[str, Any]:
        out = self.thread.to_json()
        out.update(role=self.role, read_seq=self.read_seq, unread=self.unread)
        return out


# The records made for every message (Message, NewMessage, Appended, the log's Pending and
# LogEntry, the fan-out's Event, the send frame, the verdict) are slotted dataclasses that
# are never changed after they are made, but not ``frozen``: a frozen dataclass's __init__
# sets each field through object.__setattr__, ~1.4 µs more per object, and a message makes
# about ten of them on its way (bench/node_cpu.py). Nothing may assign to their fields.
@dataclass(slots=True)
class Message:
    id: str
    thread: str
    seq: int
    sender: str
    kind: str
    body: str
    created_at: int
    client_msg_id: str | None = None
    data: dict[str, Any] | None = None
    edited_at: int | None = None
    deleted_at: int | None = None
    rev: int = 0
    thanks: int = 0
    # Moderation: the recipient's view when spans are masked, and the scan outcome.
    masked: str | None = None
    moderation: dict[str, Any] | None = None

    def view(self, viewer: str | None, *, staff: bool = False, locale: str | None = None
             ) -> dict[str, Any]:
        """The message as ``viewer`` sees it: deleted is a tombstone, masked for recipients."""
        out: dict[str, Any] = {
            "id": self.id,
            "thread": self.thread,
            "seq": self.seq,
            "sender": self.sender,
            "kind": self.kind,
            "body": self.body,
            "created_at": rfc3339(self.created_at),
        }
        if self.client_msg_id is not None and viewer == self.sender:
            out["client_msg_id"] = self.client_msg_id
        if self.data is not None:
            out["data"] = self.data
        if self.rev:
            out["rev"] = self.rev
        if self.edited_at is not None:
            out["edited_at"] = rfc3339(self.edited_at)
        if self.thanks:
            out["thanks"] = self.thanks
        if self.deleted_at is not None:
            out["deleted"] = True
            out["deleted_at"] = rfc3339(self.deleted_at)
            if not staff:
                out["body"] = ""
        elif self.masked is not None and viewer != self.sender and not staff:
            out["body"] = self.masked
            out["masked"] = True
        if self.moderation is not None:
            out["moderation"] = _moderation_view(self.moderation, viewer == self.sender, staff,
                                                 locale)
        return out


def _moderation_view(mod: dict[str, Any], is_sender: bool, staff: bool,
                     locale: str | None) -> dict[str, Any]:
    """What a participant sees of moderation: the action and their side's warning (ja+en,
    plus ``text`` in their locale when known). Staff see the whole record."""
    if staff:
        return mod
    view: dict[str, Any] = {"action": mod.get("action"),
                            "categories": mod.get("categories", [])}
    warning = mod.get("sender_warning") if is_sender else mod.get("recipient_warning")
    if warning:
        view["warning"] = dict(warning)
        if locale in warning:
            view["warning"]["text"] = warning[locale]
    return view


@dataclass(slots=True)  # not frozen: see chat.models.Message
class NewMessage:
    """A request to append one message (from ``send`` or the system-message API)."""

    thread: str
    sender: str
    kind: str
    body: str
    client_msg_id: str | None = None
    data: dict[str, Any] | None = None
    masked: str | None = None
    moderation: dict[str, Any] | None = None
    id: str = field(default_factory=lambda: new_id("m"))
    created_at: int = field(default_factory=now_us)


@dataclass(slots=True)  # not frozen: see chat.models.Message
class Appended:
    """The result of an append: the stored message, and whether this call stored it."""

    message: Message
    created: bool

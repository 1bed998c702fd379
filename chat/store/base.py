"""The storage interface, and the pure logic both back ends share.

Theory of operation for appends (the only hot write):

* The gateway never writes directly: :class:`~chat.commit.GroupCommitter` gathers the appends
  that arrive while a transaction is in flight and hands them to :meth:`Store.append_batch`
  as one batch, committed in one transaction (group commit).
* Inside the transaction the back end locks the batch's thread rows (PostgreSQL: ``FOR
  UPDATE`` in id order, so two nodes never deadlock; SQLite: the single writer), reads the
  existing messages that match the batch's idempotency keys, and calls :func:`plan_batch`,
  which decides - without I/O - which requests are retries (answered with the stored
  message) and which get the next ``seq`` of their thread. Seqs are therefore gapless: they
  are assigned under the thread's lock and only committed together with their messages.
* A user's ``send`` that moderation let through arrives as a :class:`ScreenedMessage`. Its
  key may belong to an earlier attempt that moderation withheld (held or blocked, in
  moderation's table :data:`WITHHELD_TABLE`, which has its own unique index on the key):
  the same lookup, in the same transaction, finds those too, and such a request is answered
  with its :class:`Withheld` record instead of being stored (a retry gets the answer the
  first attempt got). A stored message wins over a withheld record: a held message that a
  moderator released is stored with its key (its retry is a plain duplicate). Only
  screened requests are looked up there (a release appends the withheld key on purpose),
  so the table is only read when moderation is on (and its migrations are applied).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from ..errors import ChatError, NotFound
from ..models import (
    Appended,
    Message,
    NewMessage,
    Participant,
    Thread,
    ThreadBrief,
    ThreadSummary,
)
from .db import Db

IdemKey = tuple[str, str, str]  # (thread, sender, client_msg_id)

# Moderation's withheld messages (``moderation.schema.WITHHELD``; chat does not import the
# optional component). Read by append_batch for screened requests only: see the docstring.
WITHHELD_TABLE = "mod_withheld"


@dataclass(slots=True)  # not frozen: see chat.models.Message
class ScreenedMessage(NewMessage):
    """A user's send that moderation let through (allow, flag or mask). If moderation
    withheld an earlier attempt with the same key, :meth:`Store.append_batch` answers it
    with that :class:`Withheld` record and stores nothing."""


@dataclass(frozen=True, slots=True)
class Withheld:
    """A message moderation withheld (held or blocked: it has no seq), as a send's answer."""

    id: str
    status: str  # held | blocked | rejected | released
    action: str  # hold | block
    record: dict[str, Any]  # the moderation record: action, categories, findings, warnings

    def view(self) -> dict[str, Any]:
        """The ``withheld`` field of a send's or an edit's ``ok``."""
        return {"id": self.id, "status": self.status, "action": self.action}


BatchResult = Appended | Withheld | ChatError  # one request's answer from append_batch

# The columns of WITHHELD_TABLE that the lookup reads, in the order withheld_from_row takes.
WITHHELD_KEY_COLUMNS = "thread_id, sender, client_msg_id, id, status, action, record"


def withheld_from_row(row: Sequence[Any]) -> tuple[IdemKey, Withheld]:
    """Key and record from a row in WITHHELD_KEY_COLUMNS order (``record`` as JSON text)."""
    return (row[0], row[1], row[2]), Withheld(row[3], row[4], row[5], loads(row[6]))


def screened_keys(batch: Sequence[NewMessage], skip: Mapping[IdemKey, Any]) -> list[IdemKey]:
    """The keys of ``batch``'s screened requests that are not in ``skip`` (stored already):
    the ones to look up in WITHHELD_TABLE."""
    return [key for m in batch if isinstance(m, ScreenedMessage) and m.client_msg_id is not None
            and (key := (m.thread, m.sender, m.client_msg_id)) not in skip]


def dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def message_from_row(row: Sequence[Any]) -> Message:
    """Build a Message from a row in :data:`~chat.store.schema.MESSAGE_COLUMNS` order."""
    return Message(
        id=row[0],
        thread=row[1],
        seq=row[2],
        sender=row[3],
        kind=row[4],
        body=row[5],
        created_at=row[6],
        client_msg_id=row[7],
        data=loads(row[8]),
        edited_at=row[9],
        deleted_at=row[10],
        rev=row[11],
        thanks=row[12],
        masked=row[13],
        moderation=loads(row[14]),
    )


def thread_from_row(row: Sequence[Any], participants: Iterable[Participant] = ()) -> Thread:
    return Thread(
        id=row[0],
        kind=row[1],
        title=row[2],
        stage=row[3],
        ref=loads(row[4]) or {},
        last_seq=row[5],
        created_at=row[6],
        updated_at=row[7],
        participants=tuple(participants),
    )


def message_row(m: NewMessage, seq: int) -> tuple[Any, ...]:
    """The insert row for ``m`` in MESSAGE_COLUMNS order."""
    return (
        m.id,
        m.thread,
        seq,
        m.sender,
        m.kind,
        m.body,
        m.created_at,
        m.client_msg_id,
        dumps(m.data),
        None,
        None,
        0,
        0,
        m.masked,
        dumps(m.moderation),
    )


def _brief(rows: Iterable[Sequence[Any]]) -> dict[str, ThreadBrief]:
    """Fold (thread id, last_seq, stage, participant, role) rows into thread id -> brief."""
    acc: dict[str, ThreadBrief] = {}
    for tid, last_seq, stage, member, role in rows:
        brief = acc.get(tid)
        if brief is None:
            brief = acc[tid] = ThreadBrief(last_seq, stage, {})
        brief.members[member] = role
    return acc


@dataclass
class BatchPlan:
    """What :func:`plan_batch` decided: per request a result, plus the rows to write."""

    results: list[BatchResult]
    rows: list[tuple[Any, ...]]
    last_seqs: dict[str, int]  # only threads whose last_seq changed
    touched_at: dict[str, int]


def plan_batch(
    batch: Sequence[NewMessage],
    last_seqs: Mapping[str, int],
    existing: Mapping[IdemKey, Message],
    withheld: Mapping[IdemKey, Withheld] | None = None,
) -> BatchPlan:
    """Assign seqs to a batch, under the lock of its threads. No I/O.

    ``last_seqs`` has the locked last_seq of every thread in the batch that exists;
    ``existing`` the stored messages that match the batch's idempotency keys. A request whose
    key is in ``existing`` - or repeats an earlier request of the same batch - is answered
    with that message (``created=False``). ``withheld`` has the withheld records that match
    the keys of the batch's :class:`ScreenedMessage` requests: such a request whose key is
    not stored is answered with its record, and stores nothing.
    """
    seqs = dict(last_seqs)
    seen: dict[IdemKey, Message] = dict(existing)
    held = withheld or {}
    results: list[BatchResult] = []
    rows: list[tuple[Any, ...]] = []
    touched: dict[str, int] = {}
    for req in batch:
        if req.thread not in seqs:
            results.append(NotFound(f"thread {req.thread!r} does not exist"))
            continue
        key = (req.thread, req.sender, req.client_msg_id) if req.client_msg_id else None
        if key is not None and key in seen:
            results.append(Appended(seen[key], created=False))
            continue
        if key is not None and key in held and isinstance(req, ScreenedMessage):
            results.append(held[key])
            continue
        seq = seqs[req.thread] + 1
        seqs[req.thread] = seq
        touched[req.thread] = req.created_at
        rows.append(message_row(req, seq))
        msg = Message(
            id=req.id,
            thread=req.thread,
            seq=seq,
            sender=req.sender,
            kind=req.kind,
            body=req.body,
            created_at=req.created_at,
            client_msg_id=req.client_msg_id,
            data=req.data,
            masked=req.masked,
            moderation=req.moderation,
        )
        if key is not None:
            seen[key] = msg
        results.append(Appended(msg, created=True))
    changed = {t: s for t, s in seqs.items() if s != last_seqs.get(t)}
    return BatchPlan(results, rows, changed, touched)


def edited(msg: Message, *, body: str, at: int, masked: str | None,
           moderation: dict[str, Any] | None) -> Message:
    return replace(msg, body=body, edited_at=at, rev=msg.rev + 1, masked=masked,
                   moderation=moderation)


class Store(abc.ABC):
    """Persistent threads and messages. Every method is a coroutine; all raise ChatError."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect (and on SQLite create the file). Call :meth:`migrate` next."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise :class:`~chat.errors.Unavailable` if the database cannot be reached."""

    db: Db  # portable SQL for the other components (see chat.store.db)
    # Whether append_batch may run for several batches at once (disjoint threads), each on
    # its own connection: not on SQLite (one writer).
    concurrent_batches: bool = False

    def forget_message(self, message: Message | None) -> None:  # noqa: B027 - optional
        """``message`` changed (perhaps through another node): drop what this store keeps of
        it in memory, so a retry of its send reads it from storage. ``None``: any message
        may have changed (after a fan-out outage). A store that keeps nothing does nothing."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations of every component; return ``component:version`` applied."""

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    # --- threads
    @abc.abstractmethod
    async def create_thread(
        self,
        *,
        id: str,
        kind: str,
        title: str,
        stage: str,
        ref: dict[str, Any],
        participants: Sequence[tuple[str, str]],
        at: int,
    ) -> Thread: ...

    @abc.abstractmethod
    async def get_thread(self, thread_id: str) -> Thread | None: ...

    @abc.abstractmethod
    async def update_thread(
        self, thread_id: str, *, stage: str | None = None, title: str | None = None, at: int
    ) -> Thread: ...

    @abc.abstractmethod
    async def add_participant(
        self, thread_id: str, user_id: str, role: str, *, at: int
    ) -> tuple[Thread, bool]:
        """Add (or keep) a participant; return the thread and whether it was added."""

    @abc.abstractmethod
    async def user_threads(self, user_id: str, *, limit: int,
                           before: tuple[int, str] | None = None) -> list[ThreadSummary]:
        """The user's threads, most recently active first (``updated_at`` descending, then
        ``id``), with unread counts; with ``before`` (a thread's ``(updated_at, id)``), only
        those after that thread in this order (the next page)."""

    @abc.abstractmethod
    async def user_thread_seqs(self, user_id: str) -> dict[str, int]:
        """Thread id -> last_seq for every thread the user takes part in."""

    @abc.abstractmethod
    async def user_threads_brief(self, user_id: str) -> dict[str, ThreadBrief]:
        """Thread id -> (last_seq, stage, every participant and role) for the user's threads."""

    # --- messages
    @abc.abstractmethod
    async def append_batch(self, batch: Sequence[NewMessage]) -> list[BatchResult]:
        """Append messages in one transaction; see the module docstring. Only a
        :class:`ScreenedMessage` may be answered with a :class:`Withheld` record."""

    @abc.abstractmethod
    async def history(
        self,
        thread_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[Message]:
        """Messages in seq order: the first ``limit`` after ``after_seq``, or else the last
        ``limit`` before ``before_seq`` (or the latest)."""

    @abc.abstractmethod
    async def get_message(self, thread_id: str, message_id: str) -> Message | None: ...

    @abc.abstractmethod
    async def edit_message(
        self,
        thread_id: str,
        message_id: str,
        *,
        actor: str,
        body: str,
        masked: str | None,
        moderation: dict[str, Any] | None,
        at: int,
    ) -> Message:
        """Replace the body; the previous body is kept as a revision. Only live messages."""

    @abc.abstractmethod
    async def delete_message(self, thread_id: str, message_id: str, *, actor: str, at: int
                             ) -> Message:
        """Mark deleted (tombstone); the body is kept as a revision. Idempotent."""

    @abc.abstractmethod
    async def revisions(self, message_id: str) -> list[dict[str, Any]]: ...

    async def set_read(self, thread_id: str, user_id: str, seq: int) -> int:
        """Advance the user's read position (never backwards); return the new position."""
        return (await self.advance_read(thread_id, user_id, seq))[0]

    @abc.abstractmethod
    async def advance_read(self, thread_id: str, user_id: str, seq: int) -> tuple[int, bool]:
        """Advance the user's read position to ``seq`` (never backwards, never past the
        thread's last message): the position, and whether it moved. When it does not, nothing
        is written (a repeated ``read`` costs no commit)."""

    @abc.abstractmethod
    async def thank(self, thread_id: str, message_id: str, user_id: str, *, at: int
                    ) -> tuple[Message, bool]:
        """Record one "ありがとう" per user and message; return the message and if it was new."""

    @abc.abstractmethod
    async def thanks_summary(self, user_id: str) -> dict[str, int]:
        """``{"received": n, "given": m}`` for a user."""

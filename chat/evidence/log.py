"""Appending to the thread log inside the writer's own transaction.

Every write the log records is appended in the transaction that makes the write, so the
log and the state it describes commit (or roll back) together:

* the stores call :func:`append_sync` (SQLite, on the store's writer thread; its message
  batches use :func:`append_rows_sync` and write the heads with the threads' last_seq) and
  :func:`append_entries` (PostgreSQL, on the store's connection) from their write methods;
* other components (moderation: findings, decisions, held and blocked messages) call
  :func:`record` with ``store.db`` or with the executor of an open
  ``store.db.transaction()``, or :func:`record_sync` with a SQLite connection on the
  store's writer thread.

The chain head is kept in the thread's ``threads`` row (which the append updates anyway),
and the thread is marked in ``evidence_pending`` for the next checkpoint (a no-op when it
is already marked). Concurrency: on PostgreSQL the thread's row is locked (``FOR UPDATE``,
in id order) before its head is read - the same lock ``append_batch`` holds - so appends to
one thread serialise on every node; SQLite has one writer. Cost per batch: one head lookup,
one multi-row insert, one head update, one pending mark; per entry two SHA-256 over small
canonical JSON.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from chat.errors import NotFound
from chat.models import Message
from chat.store.db import Db, Executor

from .chain import GENESIS, Head, LogEntry, Pending, extend
from .schema import LOG, LOG_COLUMNS, PENDING

# Entry kinds written by chat itself; other components choose their own (see docs/disputes.md).
THREAD_CREATED = "thread_created"
THREAD_UPDATED = "thread_updated"
PARTICIPANT_ADDED = "participant_added"
MESSAGE = "message"
EDIT = "edit"
DELETE = "delete"
READ = "read"
THANKS = "thanks"
DISPUTE_OPENED = "dispute_opened"
DISPUTE_CLOSED = "dispute_closed"
PURGED = "purged"

# PostgreSQL array types of LOG_COLUMNS, in order (for unnest-based batch inserts).
LOG_TYPES = ("text", "bigint", "text", "text", "bigint", "text", "text", "text", "text")
_INSERT = f"INSERT INTO {LOG} ({LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SET_HEAD = "UPDATE threads SET log_seq = ?, log_head = ? WHERE id = ?"
_MARK_PENDING = f"INSERT INTO {PENDING} (thread_id) VALUES (?) ON CONFLICT DO NOTHING"


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _heads(threads: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Head]:
    heads = {r[0]: (int(r[1]), r[2] or GENESIS) for r in rows}
    missing = [t for t in threads if t not in heads]
    if missing:
        raise NotFound(f"thread {missing[0]!r} does not exist")
    return heads


def _writes(entries: Sequence[LogEntry], changed: dict[str, Head]
            ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[str]]]:
    return ([e.row() for e in entries], [(s, h, t) for t, (s, h) in changed.items()],
            [(t,) for t in changed])


# --- payloads (pure)
def message_payload(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"id": m.id, "seq": m.seq, "sender": m.sender, "kind": m.kind,
                           "body": m.body}
    for name in ("client_msg_id", "data", "masked", "moderation"):
        value = getattr(m, name)
        if value is not None:
            out[name] = value
    return out


def message_entry(m: Message) -> Pending:
    return Pending(m.thread, MESSAGE, m.sender, message_payload(m), m.created_at)


def edit_entry(old: Message, new: Message, actor: str, at: int) -> Pending:
    payload: dict[str, Any] = {"message": new.id, "rev": new.rev, "body": new.body,
                               "previous": {"rev": old.rev, "body": old.body}}
    if new.masked is not None:
        payload["masked"] = new.masked
    if new.moderation is not None:
        payload["moderation"] = new.moderation
    return Pending(new.thread, EDIT, actor, payload, at)


def delete_entry(old: Message, actor: str, at: int) -> Pending:
    return Pending(old.thread, DELETE, actor,
                   {"message": old.id, "rev": old.rev + 1,
                    "previous": {"rev": old.rev, "body": old.body}}, at)


def read_entry(thread: str, user: str, seq: int, at: int) -> Pending:
    return Pending(thread, READ, user, {"user": user, "seq": seq}, at)


def thanks_entry(thread: str, message_id: str, user: str, at: int) -> Pending:
    return Pending(thread, THANKS, user, {"message": message_id, "user": user}, at)


def thread_created_entry(thread: str, *, kind: str, title: str, stage: str,
                         ref: dict[str, Any], participants: Sequence[tuple[str, str]],
                         at: int) -> Pending:
    return Pending(thread, THREAD_CREATED, "system",
                   {"kind": kind, "title": title, "stage": stage, "ref": ref,
                    "participants": [{"user": u, "role": r} for u, r in participants]}, at)


def thread_updated_entry(thread: str, *, stage: str | None, title: str | None, at: int
                         ) -> Pending:
    payload = {k: v for k, v in (("stage", stage), ("title", title)) if v is not None}
    return Pending(thread, THREAD_UPDATED, "system", payload, at)


def participant_entry(thread: str, user: str, role: str, at: int) -> Pending:
    return Pending(thread, PARTICIPANT_ADDED, "system", {"user": user, "role": role}, at)


# --- SQLite, on the store's writer thread
def append_sync(conn: sqlite3.Connection, pending: Sequence[Pending]) -> list[LogEntry]:
    """Append ``pending`` in the transaction open on ``conn`` (SQLite): read the threads'
    heads, write the entries and the new heads."""
    if not pending:
        return []
    threads = sorted({p.thread for p in pending})
    rows = conn.execute(
        f"SELECT id, log_seq, log_head FROM threads WHERE id IN ({_marks(len(threads))})",
        threads,
    ).fetchall()
    entries, changed = append_rows_sync(conn, pending, _heads(threads, rows))
    conn.executemany(_SET_HEAD, [(s, h, t) for t, (s, h) in changed.items()])
    return entries


def append_rows_sync(conn: sqlite3.Connection, pending: Sequence[Pending],
                     heads: Mapping[str, Head]) -> tuple[list[LogEntry], dict[str, Head]]:
    """Chain ``pending`` onto ``heads`` (GENESIS for a thread with no entry yet) and write
    the entries in the transaction open on ``conn``; the new heads are returned, **not**
    written: the caller stores them in the threads' rows (the SQLite store does it in the
    same UPDATE as the threads' last_seq, one statement per thread instead of two)."""
    entries, changed = extend(heads, pending)
    log_rows, _, marks = _writes(entries, changed)
    conn.executemany(_INSERT, log_rows)
    conn.executemany(_MARK_PENDING, marks)
    return entries, changed


def record_sync(conn: sqlite3.Connection, thread_id: str, kind: str, actor: str,
                payload: dict[str, Any], at: int) -> LogEntry:
    """Append one entry in the transaction open on ``conn`` (SQLite writer thread)."""
    return append_sync(conn, [Pending(thread_id, kind, actor, payload, at)])[0]


# --- portable (both back ends), inside an open transaction
async def append_entries(ex: Executor, pending: Sequence[Pending], *, dialect: str
                         ) -> list[LogEntry]:
    """Append ``pending`` through ``ex``, which must be inside a transaction."""
    if not pending:
        return []
    threads = sorted({p.thread for p in pending})
    lock = " ORDER BY id FOR UPDATE" if dialect == "postgres" else ""
    rows = await ex.fetch(
        f"SELECT id, log_seq, log_head FROM threads WHERE id IN ({_marks(len(threads))}){lock}",
        *threads,
    )
    entries, changed = extend(_heads(threads, rows), pending)
    log_rows, heads, marks = _writes(entries, changed)
    await ex.executemany(_INSERT, log_rows)
    await ex.executemany(_SET_HEAD, heads)
    await ex.executemany(_MARK_PENDING, marks)
    return entries


# --- PostgreSQL store: every write of a batch in one statement (one round trip)
_PG_WRITE = f"""WITH ins AS (
    INSERT INTO {LOG} ({LOG_COLUMNS}) SELECT * FROM unnest($1::text[], $2::bigint[],
        $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])
), upd AS (
    UPDATE threads SET log_seq = v.s, log_head = v.h
    FROM unnest($10::text[], $11::bigint[], $12::text[]) AS v(id, s, h) WHERE threads.id = v.id
)
INSERT INTO {PENDING} (thread_id) SELECT unnest($10::text[]) ON CONFLICT DO NOTHING"""


async def append_pg(conn: Any, pending: Sequence[Pending],
                    heads: Mapping[str, Head] | None = None) -> list[LogEntry]:
    """Append through an asyncpg connection inside a transaction (the PostgreSQL store).

    ``heads``: the batch threads' (log_seq, log_head) read under their ``FOR UPDATE`` lock
    by the caller; when None they are read (and locked) here.
    """
    if not pending:
        return []
    threads = sorted({p.thread for p in pending})
    if heads is None:
        rows = await conn.fetch("SELECT id, log_seq, log_head FROM threads "
                                "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", threads)
        heads = _heads(threads, rows)
    entries, changed = extend(heads, pending)
    cols = list(zip(*(e.row() for e in entries), strict=True))
    ids = list(changed)
    await conn.execute(_PG_WRITE, *cols, ids, [changed[t][0] for t in ids],
                       [changed[t][1] for t in ids])
    return entries


def pg_heads(rows: Sequence[Sequence[Any]]) -> dict[str, Head]:
    """Heads from ``(id, log_seq, log_head)`` rows the caller read under lock."""
    return {r[0]: (int(r[1]), r[2] or GENESIS) for r in rows}


def _dialect_of(ex: Executor) -> str:
    if isinstance(ex, Db):
        return ex.dialect
    return "sqlite" if isinstance(getattr(ex, "conn", None), sqlite3.Connection) else "postgres"


async def record(tx_or_db: Executor, thread_id: str, kind: str, actor: str,
                 payload: dict[str, Any], at: int) -> LogEntry:
    """Append one entry to ``thread_id``'s log.

    ``tx_or_db`` is ``store.db`` (a transaction of its own is opened) or the executor of an
    open ``store.db.transaction()`` (the entry commits with the caller's writes).
    ``payload`` must be JSON (RFC 8785: no integers beyond 2**53, no NaN).
    """
    pending = [Pending(thread_id, kind, actor, payload, at)]
    if isinstance(tx_or_db, Db):
        async with tx_or_db.transaction() as tx:
            return (await append_entries(tx, pending, dialect=tx_or_db.dialect))[0]
    return (await append_entries(tx_or_db, pending, dialect=_dialect_of(tx_or_db)))[0]
